// Audio prompts for flows: list, upload a WAV (the node stores it as 8 kHz mono), record one
// with the microphone, hear a text as the node's TTS speaks it and keep it, play, delete.
import { Alert, Button, FileInput, Group, Paper, Select, Stack, Table, Textarea, TextInput, Title } from "@mantine/core";
import { useCallback, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { can, session, useSession } from "../shared/auth/session";
import { audioUrl } from "./audio";
import { NS } from "./i18n";
import { fieldErrors, request } from "./rest";
import { toWav } from "./wav";
import { ApiProblem } from "../shared/api/client";

interface Prompt {
  name: string;
  duration_seconds: number;
  bytes: number;
}

export default function PromptsPage() {
  const { t } = useTranslation(NS);
  const { me } = useSession();
  const writable = can(me, "flows:write");
  const [prompts, setPrompts] = useState<Prompt[]>([]);
  const [name, setName] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [playing, setPlaying] = useState<{ name: string; url: string } | null>(null);
  // Audio made in the page (a recording or the TTS's speech), heard before it is kept.
  const [made, setMade] = useState<{ wav: Blob; url: string } | null>(null);
  const [recorder, setRecorder] = useState<MediaRecorder | null>(null);
  const [text, setText] = useState("");
  const [language, setLanguage] = useState<string>("en");
  const chunks = useRef<Blob[]>([]);

  const fail = (err: unknown) => {
    const detail = err instanceof ApiProblem ? (Object.values(fieldErrors(err.body))[0] ?? err.detail) : String(err instanceof Error ? err.message : err);
    setMessage({ ok: false, text: t("form.failed", { detail }) });
  };
  const keep = (wav: Blob) =>
    setMade((old) => {
      if (old) URL.revokeObjectURL(old.url);
      return { wav, url: URL.createObjectURL(wav) };
    });
  const save = async (body: Blob) => {
    if (!name) return setMessage({ ok: false, text: t("prompts.nameFirst") });
    try {
      await request("PUT", `/api/v1/prompts/${encodeURIComponent(name)}`, undefined, body, "audio/wav");
      setMessage({ ok: true, text: t("prompts.uploaded", { name }) });
      void load();
    } catch (err) {
      fail(err);
    }
  };

  async function record() {
    setMessage(null);
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      const r = new MediaRecorder(stream);
      chunks.current = [];
      r.ondataavailable = (e) => chunks.current.push(e.data);
      r.onstop = () => {
        stream.getTracks().forEach((track) => track.stop());
        setRecorder(null);
        toWav(new Blob(chunks.current, { type: r.mimeType })).then(keep, fail);
      };
      r.start();
      setRecorder(r);
    } catch {
      setMessage({ ok: false, text: t("prompts.micRefused") });
    }
  }

  async function speak() {
    setMessage(null);
    try {
      const token = session.token();
      const response = await fetch("/api/v1/tts-preview", {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ text, language }),
      });
      if (!response.ok) {
        const problem = (await response.json().catch(() => ({}))) as { detail?: string };
        throw new ApiProblem(response.status, problem.detail ?? response.statusText, problem);
      }
      keep(await response.blob());
    } catch (err) {
      fail(err);
    }
  }

  const load = useCallback(async () => {
    try {
      setPrompts(await request<Prompt[]>("GET", "/api/v1/prompts"));
    } catch (e) {
      setMessage({ ok: false, text: String(e instanceof Error ? e.message : e) });
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <Stack data-testid="resource-prompts">
      <Title order={3}>{t("resources.prompts")}</Title>
      {writable && (
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            if (!file || !name) return;
            try {
              await request("PUT", `/api/v1/prompts/${encodeURIComponent(name)}`, undefined, file, "audio/wav");
              setMessage({ ok: true, text: t("prompts.uploaded", { name }) });
              void load();
            } catch (err) {
              const detail = err instanceof ApiProblem ? (Object.values(fieldErrors(err.body))[0] ?? err.detail) : String(err);
              setMessage({ ok: false, text: t("form.failed", { detail }) });
            }
          }}
        >
          <Group align="end">
            <TextInput label={t("prompts.promptName")} value={name} onChange={(e) => setName(e.currentTarget.value)} required />
            <FileInput label={t("prompts.file")} accept="audio/wav,audio/x-wav,.wav" value={file} onChange={setFile} required />
            <Button type="submit">{t("prompts.upload")}</Button>
          </Group>
        </form>
      )}
      {writable && (
        <Group align="stretch" grow>
          <Paper withBorder p="sm" component="section" aria-labelledby="prompt-record">
            <Title order={4} id="prompt-record" mb="xs">
              {t("prompts.record")}
            </Title>
            {recorder ? (
              <Button color="red" onClick={() => recorder.stop()}>
                {t("prompts.stopRecording")}
              </Button>
            ) : (
              <Button variant="light" onClick={() => void record()}>
                {t("prompts.startRecording")}
              </Button>
            )}
          </Paper>
          <Paper withBorder p="sm" component="section" aria-labelledby="prompt-tts">
            <Title order={4} id="prompt-tts" mb="xs">
              {t("prompts.tts")}
            </Title>
            <Stack gap="xs">
              <Textarea label={t("prompts.text")} name="tts-text" value={text} onChange={(e) => setText(e.currentTarget.value)} autosize minRows={2} />
              <Group align="end">
                <Select
                  label={t("prompts.language")}
                  data={[
                    { value: "en", label: "English" },
                    { value: "zh-CN", label: "中文" },
                  ]}
                  value={language}
                  onChange={(v) => setLanguage(v ?? "en")}
                  allowDeselect={false}
                  w={140}
                />
                <Button variant="light" disabled={!text.trim()} onClick={() => void speak()}>
                  {t("prompts.preview")}
                </Button>
              </Group>
            </Stack>
          </Paper>
        </Group>
      )}
      {made && (
        <Group data-testid="prompt-made">
          {/* eslint-disable-next-line jsx-a11y/media-has-caption -- a prompt being made has no captions to offer */}
          <audio controls src={made.url} aria-label={t("prompts.made")} data-bytes={made.wav.size} />
          <Button onClick={() => void save(made.wav)}>{t("prompts.saveMade")}</Button>
        </Group>
      )}
      {message && (
        <Alert color={message.ok ? "green" : "red"} role={message.ok ? "status" : "alert"}>
          {message.text}
        </Alert>
      )}
      <Table striped aria-label={t("resources.prompts")}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t("fields.name")}</Table.Th>
            <Table.Th>{t("fields.duration_seconds")}</Table.Th>
            <Table.Th>{t("list.actions")}</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {prompts.map((p) => (
            <Table.Tr key={p.name}>
              <Table.Td>{p.name}</Table.Td>
              <Table.Td>{p.duration_seconds}</Table.Td>
              <Table.Td>
                <Group gap="xs">
                  <Button
                    size="xs"
                    variant="light"
                    aria-label={`${t("prompts.play")} ${p.name}`}
                    onClick={async () => setPlaying({ name: p.name, url: await audioUrl(`/api/v1/prompts/${encodeURIComponent(p.name)}`) })}
                  >
                    {t("prompts.play")}
                  </Button>
                  {writable && (
                    <Button
                      size="xs"
                      variant="light"
                      color="red"
                      aria-label={`${t("list.delete")} ${p.name}`}
                      onClick={async () => {
                        await request("DELETE", `/api/v1/prompts/${encodeURIComponent(p.name)}`);
                        void load();
                      }}
                    >
                      {t("list.delete")}
                    </Button>
                  )}
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {/* eslint-disable-next-line jsx-a11y/media-has-caption -- recorded calls and prompts have no captions to offer */}
      {playing && <audio controls autoPlay src={playing.url} aria-label={`${t("prompts.play")} ${playing.name}`} />}
    </Stack>
  );
}
