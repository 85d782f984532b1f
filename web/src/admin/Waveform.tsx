// A recording's waveform, one lane per channel (the node records the customer left and the
// agent right), with play / pause and seeking by click or keyboard. wavesurfer.js draws it
// from the audio the page fetched with the session's token (audio.ts): same origin, no token
// in a URL.
import { Button, Group, Stack, Text } from "@mantine/core";
import { useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import WaveSurfer from "wavesurfer.js";
import { formatDuration } from "../shared/i18n";
import { audioUrl } from "./audio";
import { NS } from "./i18n";

const SEEK_SECONDS = 5;
const CUSTOMER = "#1864ab";
const AGENT = "#2b8a3e";

export default function Waveform({ path, label }: { path: string; label: string }) {
  const { t } = useTranslation(NS);
  const container = useRef<HTMLDivElement>(null);
  const surfer = useRef<WaveSurfer | null>(null);
  const [channels, setChannels] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [time, setTime] = useState(0);
  const [duration, setDuration] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let url: string | null = null;
    let alive = true;
    void audioUrl(path).then(
      (u) => {
        url = u;
        if (!alive || !container.current) return;
        const ws = WaveSurfer.create({
          container: container.current,
          url: u,
          height: 64,
          // One lane per channel: the customer (left) above the agent (right).
          splitChannels: [
            { waveColor: CUSTOMER, progressColor: "#0b3a66" },
            { waveColor: AGENT, progressColor: "#14461f" },
          ],
          cursorColor: "#c92a2a",
          normalize: true,
        });
        surfer.current = ws;
        ws.on("decode", (d) => {
          setDuration(d);
          setChannels(ws.getDecodedData()?.numberOfChannels ?? 0);
        });
        ws.on("timeupdate", setTime);
        ws.on("play", () => setPlaying(true));
        ws.on("pause", () => setPlaying(false));
        ws.on("finish", () => setPlaying(false));
        ws.on("error", (e) => setError(String(e)));
      },
      (e) => alive && setError(String(e instanceof Error ? e.message : e)),
    );
    return () => {
      alive = false;
      surfer.current?.destroy();
      surfer.current = null;
      if (url) URL.revokeObjectURL(url);
    };
  }, [path]);

  const seek = (delta: number) => {
    const ws = surfer.current;
    if (ws && duration > 0) ws.setTime(Math.min(duration, Math.max(0, ws.getCurrentTime() + delta)));
  };

  return (
    <Stack gap="xs" data-testid="waveform" data-channels={channels} data-playing={playing} data-time={time.toFixed(2)}>
      <Group gap="lg">
        <Text size="sm">
          <span aria-hidden style={{ color: CUSTOMER }}>
            ■
          </span>{" "}
          {t("recording.customer")}
        </Text>
        <Text size="sm">
          <span aria-hidden style={{ color: AGENT }}>
            ■
          </span>{" "}
          {t("recording.agent")}
        </Text>
      </Group>
      <div
        ref={container}
        role="slider"
        tabIndex={0}
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={Math.round(duration)}
        aria-valuenow={Math.round(time)}
        aria-valuetext={`${formatDuration(time)} / ${formatDuration(duration)}`}
        onKeyDown={(e) => {
          if (e.key === "ArrowRight") seek(SEEK_SECONDS);
          else if (e.key === "ArrowLeft") seek(-SEEK_SECONDS);
          else if (e.key === " ") void surfer.current?.playPause();
          else return;
          e.preventDefault();
        }}
      />
      <Group>
        <Button size="xs" disabled={duration === 0} onClick={() => void surfer.current?.playPause()}>
          {playing ? t("recording.pause") : t("recording.play")}
        </Button>
        <Button size="xs" variant="default" disabled={duration === 0} onClick={() => seek(-SEEK_SECONDS)}>
          {t("recording.back", { seconds: SEEK_SECONDS })}
        </Button>
        <Button size="xs" variant="default" disabled={duration === 0} onClick={() => seek(SEEK_SECONDS)}>
          {t("recording.forward", { seconds: SEEK_SECONDS })}
        </Button>
        <Text size="sm" aria-live="off">
          {formatDuration(time)} / {formatDuration(duration)}
        </Text>
      </Group>
      {error && (
        <Text c="red" role="alert">
          {t("recording.failed", { detail: error })}
        </Text>
      )}
    </Stack>
  );
}
