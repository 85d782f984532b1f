"""Runs an IVR flow session on a caller's media leg: prompts, keys, speech, webhooks, timers.

The interpreter (``cloudcc.ivr.FlowSession``) decides; this edge performs its actions with the
media engine (prompts, DTMF), the TTS and ASR engines and the webhook runner, feeds the results
back, and returns the flow's terminal action (queue, agent, external number, voicemail, hang
up) to the contact that runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cloudcc.ai.asr import RecognitionSession, SpeechRecognizer, grammar_for, to_flow_input
from cloudcc.ai.tts import TextToSpeech
from cloudcc.ivr import (
    CallbackResult,
    CallerHungUp,
    CallWebhook,
    Collect,
    DigitPressed,
    FlowEvent,
    FlowLoaded,
    FlowLoadFailed,
    FlowSession,
    Hangup,
    LoadFlow,
    OfferCallback,
    Play,
    PlaybackDone,
    RouteToQueue,
    SessionState,
    StartVoicemail,
    StopPlayback,
    Timeout,
    TransferExternal,
    TransferToAgent,
)
from cloudcc.ivr.actions import Input, Output, WebhookOutcome, WebhookResult
from cloudcc.ivr.model import Flow
from cloudcc.ivr.webhook import WebhookRunner
from cloudcc.media.engine import Leg, MediaEngine, Playback

log = logging.getLogger("cloudcc.contacts.ivr")

# While the flow plays a message (not a menu), keys are kept for the next question.
_NOT_LISTENING = frozenset({SessionState.PLAYING, SessionState.RUNNING})

Terminal = RouteToQueue | TransferToAgent | TransferExternal | StartVoicemail | Hangup

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")


class VoiceIvr:
    """The edge of one flow session on one voice leg."""

    def __init__(
        self,
        media: MediaEngine,
        leg: Leg,
        tts: TextToSpeech,
        asr: SpeechRecognizer | None,
        webhooks: WebhookRunner | None,
        load_flow: Callable[[str], Awaitable[Flow]],
        schedule_callback: Callable[[OfferCallback], Awaitable[CallbackResult]],
        on_event: Callable[[FlowEvent], None],
        prompts_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        check_url: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self.media = media
        self.leg = leg
        self.tts = tts
        self.asr = asr
        self.webhooks = webhooks
        self.load_flow = load_flow
        self.schedule_callback = schedule_callback
        self.on_event = on_event
        self.prompts_dir = prompts_dir
        self.clock = clock
        self.check_url = check_url  # refuses private/loopback targets (SSRF) unless allowed
        self.inputs: asyncio.Queue[Input] = asyncio.Queue()
        self.playback: Playback | None = None
        self.playing_id: int | None = None
        self.prompt_started_at: float | None = None  # when the last prompt's audio began
        self._recognizer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, session: FlowSession) -> Terminal | None:
        """Run until the flow ends; the terminal action, or None if the flow just ended."""
        unsubscribe = self.leg.on_dtmf(lambda e: self.inputs.put_nowait(DigitPressed(e.digit)))
        typeahead: list[DigitPressed] = []
        try:
            outputs = session.start(self.clock())
            while True:
                terminal = await self._perform(outputs)
                if terminal is not None:
                    return terminal
                if session.end_reason is not None:
                    return None
                if typeahead and session.state is SessionState.COLLECTING:
                    inp: Input = typeahead.pop(0)  # keys pressed before the menu asked
                else:
                    inp = await self._next_input(session)
                    if isinstance(inp, DigitPressed) and session.state in _NOT_LISTENING:
                        typeahead.append(inp)  # callers who know the menu press early
                        continue
                outputs = session.on_input(inp, self.clock())
        finally:
            unsubscribe()
            await self._stop_all()

    async def _next_input(self, session: FlowSession) -> Input:
        deadline = session.next_deadline
        if deadline is None:
            return await self.inputs.get()
        try:
            return await asyncio.wait_for(self.inputs.get(), max(0.0, deadline - self.clock()))
        except TimeoutError:
            return Timeout()

    async def _perform(self, outputs: list[Output]) -> Terminal | None:
        terminal: Terminal | None = None
        for out in outputs:
            if isinstance(out, FlowEvent):
                self.on_event(out)
            elif isinstance(out, Play):
                await self._play(out)
            elif isinstance(out, StopPlayback):
                if self.playback is not None and self.playing_id == out.play_id:
                    self.playback.stop()
            elif isinstance(out, Collect):
                self._collect(out)
            elif isinstance(out, CallWebhook):
                self._spawn(self._webhook(out))
            elif isinstance(out, LoadFlow):
                self._spawn(self._load(out.flow_id))
            elif isinstance(out, OfferCallback):
                self._spawn(self._callback(out))
            elif isinstance(
                out, RouteToQueue | TransferToAgent | TransferExternal | StartVoicemail | Hangup
            ):
                terminal = out
        return terminal

    # --- prompts --------------------------------------------------------------------------

    async def _play(self, play: Play) -> None:
        source: Any
        try:
            if play.audio:
                source = self._audio_file(play.audio)
            else:
                audio = await self.tts.synthesize(play.text or "", language=play.language)
                source = audio.samples
        except Exception:
            log.exception("prompt %s could not be rendered; skipped", play.play_id)
            self.inputs.put_nowait(PlaybackDone(play.play_id))
            return
        self.playback = self.media.play(self.leg, source, barge_in=play.barge_in)
        self.playing_id = play.play_id
        self.prompt_started_at = self.clock()
        playback = self.playback
        self._spawn(self._await_playback(playback, play.play_id))

    async def _await_playback(self, playback: Playback, play_id: int) -> None:
        await playback
        self.inputs.put_nowait(PlaybackDone(play_id))

    def _audio_file(self, audio_id: str) -> Path:
        """An uploaded prompt of the tenant, or one of the bundled sounds by name."""
        for base in (self.prompts_dir, SOUNDS):
            if base is None:
                continue
            path = (base / f"{audio_id}.wav").resolve()
            if path.is_relative_to(base.resolve()) and path.exists():
                return path
        raise FileNotFoundError(f"no audio prompt {audio_id!r}")

    # --- input ----------------------------------------------------------------------------

    def _collect(self, collect: Collect) -> None:
        if self._recognizer is not None:
            self._recognizer.cancel()
            self._recognizer = None
        grammar = grammar_for(collect.grammar, collect.digits_grammar, collect.max_digits)
        if grammar is not None and self.asr is not None:
            self._recognizer = asyncio.get_running_loop().create_task(
                self._recognize(self.asr.session(grammar), collect)
            )

    async def _recognize(self, rec: RecognitionSession, collect: Collect) -> None:
        frames: asyncio.Queue[Any] = asyncio.Queue(maxsize=500)
        unsubscribe = self.leg.add_listener(
            lambda pcm: frames.put_nowait(pcm) if not frames.full() else None
        )
        try:
            while True:
                frame = await frames.get()
                result = await rec.feed(frame)
                if rec.speech_started and self.playback is not None and collect.barge_in:
                    self.playback.stop()  # barge-in by voice
                if result is not None:
                    self.inputs.put_nowait(to_flow_input(result))
                    return
        finally:
            unsubscribe()

    # --- edge work ------------------------------------------------------------------------

    async def _webhook(self, action: CallWebhook) -> None:
        request = action.request
        if self.webhooks is None:
            self.inputs.put_nowait(
                WebhookResult(
                    request.request_id,
                    WebhookOutcome.ERROR,
                    error="webhooks are disabled on this node",
                )
            )
            return
        if self.check_url is not None:
            try:
                await self.check_url(request.url)
            except Exception as exc:  # refused: private target, no such host, bad URL
                self.inputs.put_nowait(
                    WebhookResult(request.request_id, WebhookOutcome.ERROR, error=str(exc))
                )
                return
        self.inputs.put_nowait(await self.webhooks.run(request))

    async def _load(self, flow_id: str) -> None:
        try:
            self.inputs.put_nowait(FlowLoaded(await self.load_flow(flow_id)))
        except Exception as exc:
            self.inputs.put_nowait(FlowLoadFailed(flow_id, str(exc)))

    async def _callback(self, offer: OfferCallback) -> None:
        try:
            self.inputs.put_nowait(await self.schedule_callback(offer))
        except Exception as exc:
            log.exception("scheduling a callback failed")
            self.inputs.put_nowait(CallbackResult(False, str(exc)))

    def caller_hung_up(self) -> None:
        self.inputs.put_nowait(CallerHungUp())

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_all(self) -> None:
        if self.playback is not None:
            self.playback.stop()
        tasks = list(self._tasks)
        if self._recognizer is not None:
            tasks.append(self._recognizer)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
