// One contact: its timeline (created, IVR, queue, ring, answer, end), its legs, its IVR path
// and its recordings played in the page with a two-channel waveform.
import { Button, Code, Group, Modal, Stack, Table, Text, Title } from "@mantine/core";
import { lazy, Suspense, useState } from "react";
import { useTranslation } from "react-i18next";

import { NS } from "./i18n";
import type { Row } from "./rest";

// wavesurfer.js comes with the player, in its own chunk, when a recording is opened.
const Waveform = lazy(() => import("./Waveform"));

export function when(v: unknown): string {
  if (typeof v !== "string") return "";
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : new Intl.DateTimeFormat(document.documentElement.lang || undefined, { dateStyle: "short", timeStyle: "medium" }).format(d);
}

export function ContactDetail({ contact, onClose }: { contact: Row; onClose: () => void }) {
  const { t } = useTranslation(NS);
  const [recording, setRecording] = useState<string | null>(null);
  const steps: [string, unknown][] = [
    ["created_at", contact.created_at],
    ["answered_at", contact.answered_at],
    ["ended_at", contact.ended_at],
  ];
  const seconds = ["ivr_seconds", "queue_seconds", "ring_seconds", "talk_seconds", "hold_seconds", "wrapup_seconds"].filter((k) => typeof contact[k] === "number");
  const recordings = Array.isArray(contact.recordings) ? (contact.recordings as unknown[]) : [];
  return (
    <Modal opened onClose={onClose} size="xl" title={`${t("resources.contacts")} ${String(contact.id)}`} closeButtonProps={{ "aria-label": t("form.cancel") }}>
      <Stack>
        <Title order={4}>{t("contact.timeline")}</Title>
        <Table aria-label={t("contact.timeline")}>
          <Table.Tbody>
            {steps
              .filter(([, v]) => v)
              .map(([k, v]) => (
                <Table.Tr key={k}>
                  <Table.Th>{t(`fields.${k}`)}</Table.Th>
                  <Table.Td>{when(v)}</Table.Td>
                </Table.Tr>
              ))}
            {seconds.map((k) => (
              <Table.Tr key={k}>
                <Table.Th>{t(`fields.${k}`)}</Table.Th>
                <Table.Td>{String(contact[k])}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        <Title order={4}>{t("contact.path")}</Title>
        <Table aria-label={t("contact.path")} data-testid="contact-path">
          <Table.Tbody>
            {(Array.isArray(contact.path) ? (contact.path as Record<string, unknown>[]) : []).map((step, i) => (
              <Table.Tr key={i}>
                <Table.Td>{when(step.at)}</Table.Td>
                <Table.Td>{String(step.type ?? "")}</Table.Td>
                <Table.Td>{String(step.name ?? step.node ?? JSON.stringify(step))}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        <Title order={4}>{t("contact.legs")}</Title>
        <Code block>{JSON.stringify(contact.legs ?? [], null, 2)}</Code>
        {recordings.length > 0 && (
          <Group>
            {recordings.map((r) => {
              const id = typeof r === "object" && r !== null && "id" in r ? String((r as { id: unknown }).id) : String(r);
              return (
                <Button key={id} size="xs" variant="light" aria-pressed={recording === id} onClick={() => setRecording(id)}>
                  {t("contact.play")} {id}
                </Button>
              );
            })}
          </Group>
        )}
        {recording && (
          <Suspense fallback={null}>
            <Waveform key={recording} path={`/api/v1/recordings/${encodeURIComponent(recording)}/audio`} label={`${t("contact.play")} ${recording}`} />
          </Suspense>
        )}
        <Text size="xs" c="dimmed">
          {String(contact.end_cause ?? "")}
        </Text>
      </Stack>
    </Modal>
  );
}
