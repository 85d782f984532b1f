"""Uploaded audio prompts, played by flows (``{"prompt": {"audio": "<name>"}}``).

A prompt is sent as a WAV (16-bit PCM, any rate, mono or stereo) and stored converted to
telephony audio (8 kHz mono) under ``<data>/prompts/<tenant>/<name>.wav``. ``POST
/tts-preview`` speaks a text with the node's TTS engine (the one flows' ``text`` prompts use),
so an admin hears it, and may keep it as a prompt, before a caller does.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from cloudcc.ai.audio import read_wav, resample
from cloudcc.ai.exceptions import AudioFormatError, TTSError
from cloudcc.api.crud import ERRORS
from cloudcc.api.security import Authenticated, Ctx
from cloudcc.errors import Invalid, NotFound, PermissionDenied
from cloudcc.media.wav import read_format, write_wav
from cloudcc.tenancy import audit
from cloudcc.tenancy.model import Actor, Permission

router = APIRouter(prefix="/prompts", tags=["prompts"], responses=ERRORS)
speech = APIRouter(tags=["prompts"], responses=ERRORS)

PromptName = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
MAX_PROMPT_BYTES = 20 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class PromptOut(BaseModel):
    name: str
    duration_seconds: float
    bytes: int


def _dir(ctx: Any, actor: Actor) -> Path:
    return Path(ctx.settings.data_dir) / "prompts" / actor.tenant_id


def _need(actor: Actor, permission: Permission) -> None:
    if not actor.principal.can(permission):
        raise PermissionDenied(f"this needs the permission {permission.value}")


def _describe(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        fmt = read_format(f, str(path))
    return {
        "name": path.stem,
        "duration_seconds": round(fmt.data_size / (fmt.rate * 2), 3),
        "bytes": path.stat().st_size,
    }


def _convert_and_store(data: bytes, target: Path) -> dict[str, Any]:
    try:
        audio = read_wav(data)
    except AudioFormatError as exc:
        raise Invalid(f"not a usable WAV file: {exc}") from exc
    samples = resample(audio.samples, audio.rate, 8000) if audio.rate != 8000 else audio.samples
    if len(samples) == 0:
        raise Invalid("the WAV file holds no audio")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    write_wav(partial, samples, 8000)
    partial.replace(target)
    return _describe(target)


@router.put(
    "/{name}",
    response_model=PromptOut,
    operation_id="upload_prompt",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_prompt(actor: Authenticated, ctx: Ctx, name: PromptName, request: Request) -> Any:
    """Store (or replace) a prompt from a WAV body; it is converted to 8 kHz mono."""
    _need(actor, Permission.FLOWS_WRITE)
    data = await request.body()
    result = await asyncio.to_thread(_convert_and_store, data, _dir(ctx, actor) / f"{name}.wav")
    async with ctx.db.transaction() as s:
        audit.record(s, actor, "upload", "prompt", name, {"bytes": len(data)})
    return result


@router.get("", response_model=list[PromptOut], operation_id="list_prompts")
async def list_prompts(actor: Authenticated, ctx: Ctx) -> Any:
    _need(actor, Permission.FLOWS_READ)
    folder = _dir(ctx, actor)

    def scan() -> list[dict[str, Any]]:
        if not folder.exists():
            return []
        found = []
        for p in sorted(folder.glob("*.wav")):
            if _NAME.match(p.stem):
                try:
                    found.append(_describe(p))
                except FileNotFoundError:
                    continue  # deleted while listed
        return found

    return await asyncio.to_thread(scan)


@router.get(
    "/{name}",
    operation_id="get_prompt",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}, "description": "the WAV file"}},
)
async def get_prompt(actor: Authenticated, ctx: Ctx, name: PromptName) -> Response:
    _need(actor, Permission.FLOWS_READ)
    path = _dir(ctx, actor) / f"{name}.wav"
    # Opened once and sent from that handle: a delete or replace while it is read changes
    # neither the length announced nor the bytes sent (a path read twice would).
    try:
        f = await asyncio.to_thread(path.open, "rb")
    except FileNotFoundError:
        raise NotFound(f"prompt {name} not found") from None
    size = os.fstat(f.fileno()).st_size

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(f.read, 64 * 1024):
                yield chunk
        finally:
            f.close()

    return StreamingResponse(
        chunks(),
        media_type="audio/wav",
        headers={
            "content-length": str(size),
            "content-disposition": f'attachment; filename="{name}.wav"',
        },
    )


@router.delete("/{name}", status_code=204, operation_id="delete_prompt")
async def delete_prompt(actor: Authenticated, ctx: Ctx, name: PromptName) -> Response:
    _need(actor, Permission.FLOWS_WRITE)
    path = _dir(ctx, actor) / f"{name}.wav"
    if not await asyncio.to_thread(path.exists):
        raise NotFound(f"prompt {name} not found")
    await asyncio.to_thread(path.unlink)
    async with ctx.db.transaction() as s:
        audit.record(s, actor, "delete", "prompt", name)
    return Response(status_code=204)


class SpeechIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000)
    language: str | None = Field(
        None, max_length=35, description="a BCP 47 tag (en, zh-CN); the engine's default if unset"
    )


@speech.post(
    "/tts-preview",
    operation_id="tts_preview",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}, "description": "8 kHz mono WAV"}},
)
async def tts_preview(actor: Authenticated, ctx: Ctx, body: SpeechIn) -> Response:
    """The text as the node's TTS engine speaks it to callers (8 kHz mono WAV)."""
    _need(actor, Permission.FLOWS_READ)
    voice = ctx.extra.get("voice")
    if voice is None:
        raise Invalid("this node runs no voice service, so it has no text to speech")
    try:
        audio = await voice.tts.synthesize(body.text, language=body.language)
    except TTSError as exc:
        raise Invalid(f"text to speech failed: {exc}") from exc
    return Response(audio.to_wav(), media_type="audio/wav")
