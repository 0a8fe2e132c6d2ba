"""Request and response bodies. The limits of a server (ServeLimits) are part of its schema, so
the OpenAPI description tells a client what it may send, and pydantic refuses the rest (422)
before anything is queued. Unknown fields are refused too: a typo never passes silently."""


from types import SimpleNamespace
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from rnnlab.serve.limits import ServeLimits

MAX_SEED = 2**32 - 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    detail: str = Field(description="what went wrong, in one line")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    models: list[str]


class ClassifyRecord(BaseModel):
    text: str
    label: str
    probabilities: dict[str, float]
    tokens: list[str] | None = Field(None, description="with attention pooling: the words read")
    attention: list[float] | None = Field(None, description="one weight per token")
    sentences: list[list[str]] | None = Field(
        None, description="documents (han): the sentences read, as words")
    sentence_attention: list[float] | None = Field(
        None, description="documents (han): one weight per sentence")
    word_attention: list[list[float]] | None = Field(
        None, description="documents (han): one weight per word of each sentence")


class Entity(BaseModel):
    type: str
    start: int = Field(description="first word (0-based)")
    end: int = Field(description="one past the last word")
    char_start: int
    char_end: int
    text: str


class TagRecord(BaseModel):
    words: list[str]
    tags: list[str]
    entities: list[Entity] | None = Field(None, description="for entity tag schemes")


class Ranked(BaseModel):
    translation: str
    score: float | None = Field(description="log-probability (natural log)")


class TranslateRecord(BaseModel):
    source: str
    translation: str
    score: float | None
    n_best: list[Ranked] = Field(description="the best translations of the beam, best first")
    source_tokens: list[str]
    target_tokens: list[str]
    attention: list[list[float]] | None = Field(
        description="one row per target token, one column per source token")


class ScoreRecord(BaseModel):
    text: str
    log_prob: float | None = Field(description="natural log; null when -inf")
    tokens: int
    perplexity: float | None
    token_log_probs: list[tuple[str, float | None]]


class ClassifyResponse(BaseModel):
    predictions: list[ClassifyRecord]


class TagResponse(BaseModel):
    sentences: list[TagRecord]


class TranslateResponse(BaseModel):
    translations: list[TranslateRecord]


class ScoreResponse(BaseModel):
    scores: list[ScoreRecord]


def _json_number(value: object) -> object:
    """JSON Schema's numbers: 15.0 is an integer, but "15" and false are not numbers (pydantic's
    lax mode would take them, its strict mode would refuse 15.0)."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("expected a number")
    return value


def number(kind: type, **bounds: float) -> object:
    """An int or float field's type with its bounds (inside, so OpenAPI shows them even when
    the field may also be null)."""
    return Annotated[kind, Field(**bounds), BeforeValidator(_json_number)]


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("the text is blank")
    return text


def request_models(limits: ServeLimits) -> SimpleNamespace:
    """The request bodies of a server with these limits."""
    Text = Annotated[str, Field(min_length=1, max_length=limits.max_text_chars,
                                description="a non-blank text"), AfterValidator(_not_blank)]
    Texts = Annotated[list[Text], Field(min_length=1, max_length=limits.max_items)]

    class ClassifyRequest(Strict):
        texts: Texts = Field(examples=[["a gripping, funny film"]])

    class TagRequest(Strict):
        sentences: Texts = Field(description="sentences, words separated by spaces",
                                 examples=[["EU rejects German call"]])
        output_scheme: Literal["bio", "bioes", "iob1"] = "bio"

    class TranslateRequest(Strict):
        texts: Texts = Field(examples=[["ein hund läuft"]])
        beam: number(int, ge=1, le=limits.max_beam) | None = Field(
            None, description="beam size (1: greedy; default: the run's)")
        alpha: number(float, ge=0.0, le=10.0) | None = Field(
            None, description="GNMT length-penalty exponent")
        n_best: number(int, ge=1, le=limits.max_beam) = Field(
            1, description="up to this many translations of each line, best first (a beam of "
                           "k has at most k)")

    class ScoreRequest(Strict):
        texts: Texts = Field(examples=[["the cat sat on the mat"]])

    class SampleRequest(Strict):
        prime: str = Field("", max_length=limits.max_text_chars, description="text to start from")
        length: number(int, ge=1, le=limits.max_sample_length) = Field(
            min(200, limits.max_sample_length), description="tokens to generate")
        temperature: number(float, ge=0.05, le=100.0) = 1.0
        top_k: number(int, ge=0, le=1_000_000) = Field(0, description="0: no top-k filter")
        top_p: number(float, gt=0.0, le=1.0) = 1.0
        greedy: StrictBool = False
        seed: number(int, ge=0, le=MAX_SEED) | None = None

    return SimpleNamespace(classify=ClassifyRequest, tag=TagRequest, translate=TranslateRequest,
                           score=ScoreRequest, sample=SampleRequest)
