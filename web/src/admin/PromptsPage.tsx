// Audio prompts for flows: list, upload a WAV (the node stores it as 8 kHz mono), play, delete.
import { Alert, Button, FileInput, Group, Stack, Table, TextInput, Title } from "@mantine/core";
import { useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { can, useSession } from "../shared/auth/session";
import { audioUrl } from "./audio";
import { NS } from "./i18n";
import { fieldErrors, request } from "./rest";
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
