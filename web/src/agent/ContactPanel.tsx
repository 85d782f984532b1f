import { Alert, Autocomplete, Badge, Button, Group, Modal, Paper, Popover, SegmentedControl, Select, SimpleGrid, Stack, Text, Textarea, Title } from "@mantine/core";
import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { api, ApiProblem, call } from "../shared/api/client";
import { formatDuration } from "../shared/i18n";
import { useNow } from "../shared/time";
import { DEFAULT_DISPOSITIONS, useDispositions } from "./codes";
import type { LiveContact } from "./model";

type Op = "hold" | "unhold" | "mute" | "unmute" | "hangup";

export interface ContactActions {
  op: (id: string, op: Op) => Promise<void>;
  dtmf: (id: string, digits: string) => Promise<void>;
  transfer: (id: string, targetType: "agent" | "queue" | "flow" | "external", target: string) => Promise<void>;
  wrapup: (id: string, code: string | null, notes: string) => Promise<void>;
  answer?: () => void;
  decline?: () => void;
}

function Field({ label, value }: { label: string; value: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text fw={600}>{value}</Text>
    </div>
  );
}

export function ContactPanel({ contact, actions, transferOpen, setTransferOpen }: { contact: LiveContact; actions: ContactActions; transferOpen: boolean; setTransferOpen: (open: boolean) => void }) {
  const { t } = useTranslation();
  const now = useNow();
  const unknown = t("agent.contact.unknown");
  useEffect(() => {
    // For bench/web.py: seconds from the routing offer (the event's time) to the pop-up shown.
    const w = window as unknown as { ccPopups?: Record<string, number> };
    w.ccPopups ??= {};
    w.ccPopups[contact.id] ??= Date.now() / 1000 - contact.offeredAt;
  }, [contact.id, contact.offeredAt]);
  const title = contact.phase === "ringing" ? t("agent.contact.incoming") : contact.phase === "wrapup" ? t("agent.wrapup.title") : t("agent.contact.inCall");
  return (
    <Paper withBorder p="md" component="section" aria-labelledby={`contact-${contact.id}`} data-testid="contact" data-phase={contact.phase}>
      <Stack>
        <Group justify="space-between">
          <Title order={3} id={`contact-${contact.id}`}>
            {title}
          </Title>
          {contact.recording && <Badge color="red">{t("agent.contact.recording")}</Badge>}
        </Group>
        <Group gap="xl">
          <Field label={t("agent.contact.customer")} value={contact.customer ?? unknown} />
          <Field label={t("agent.contact.dialed")} value={contact.dialed ?? unknown} />
          <Field label={t("agent.contact.queue")} value={contact.queue ?? "—"} />
        </Group>
        {contact.phase === "ringing" &&
          (actions.answer ? (
            <Group>
              <Button color="teal" onClick={actions.answer}>
                {t("agent.contact.answer")}
              </Button>
              <Button color="red" variant="light" onClick={actions.decline}>
                {t("agent.contact.decline")}
              </Button>
            </Group>
          ) : (
            <Text>{t("agent.contact.answerOnPhone")}</Text>
          ))}
        {contact.phase === "talking" && <InCall contact={contact} actions={actions} now={now} transferOpen={transferOpen} setTransferOpen={setTransferOpen} />}
        {contact.phase === "wrapup" && <WrapUp contact={contact} actions={actions} now={now} />}
      </Stack>
    </Paper>
  );
}

function InCall({ contact, actions, now, transferOpen, setTransferOpen }: { contact: LiveContact; actions: ContactActions; now: number; transferOpen: boolean; setTransferOpen: (o: boolean) => void }) {
  const { t } = useTranslation();
  const held = contact.heldSince !== null;
  return (
    <Stack>
      <Group gap="lg">
        <Text role="timer" aria-live="off" data-testid="talk-time">
          {t("agent.contact.talk", { time: formatDuration(now - (contact.connectedAt ?? now)) })}
        </Text>
        {held && <Text fw={700}>{t("agent.contact.onHold", { time: formatDuration(now - (contact.heldSince ?? now)) })}</Text>}
      </Group>
      <Group gap="xs">
        <Button variant={held ? "filled" : "default"} onClick={() => void actions.op(contact.id, held ? "unhold" : "hold")} aria-pressed={held}>
          {held ? t("agent.contact.unhold") : t("agent.contact.hold")}
        </Button>
        <Button variant={contact.muted ? "filled" : "default"} onClick={() => void actions.op(contact.id, contact.muted ? "unmute" : "mute")} aria-pressed={contact.muted}>
          {contact.muted ? t("agent.contact.unmute") : t("agent.contact.mute")}
        </Button>
        <Keypad onDigit={(d) => void actions.dtmf(contact.id, d)} />
        <Button variant="default" onClick={() => setTransferOpen(true)}>
          {t("agent.contact.transfer")}
        </Button>
        <Button color="red" onClick={() => void actions.op(contact.id, "hangup")}>
          {t("agent.contact.hangup")}
        </Button>
      </Group>
      <Transfer opened={transferOpen} onClose={() => setTransferOpen(false)} onTransfer={(type, target) => actions.transfer(contact.id, type, target)} />
    </Stack>
  );
}

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

function Keypad({ onDigit }: { onDigit: (digit: string) => void }) {
  const { t } = useTranslation();
  return (
    <Popover position="bottom" trapFocus>
      <Popover.Target>
        <Button variant="default">{t("agent.contact.keypad")}</Button>
      </Popover.Target>
      <Popover.Dropdown>
        <SimpleGrid cols={3} spacing={4} role="group" aria-label={t("agent.contact.keypad")}>
          {KEYS.map((k) => (
            <Button key={k} variant="default" onClick={() => onDigit(k)}>
              {k}
            </Button>
          ))}
        </SimpleGrid>
      </Popover.Dropdown>
    </Popover>
  );
}

type TargetType = "agent" | "queue" | "flow" | "external";

function Transfer({ opened, onClose, onTransfer }: { opened: boolean; onClose: () => void; onTransfer: (type: TargetType, target: string) => Promise<void> }) {
  const { t } = useTranslation();
  const [type, setType] = useState<TargetType>("queue");
  const [target, setTarget] = useState("");
  const [directory, setDirectory] = useState<Record<TargetType, string[]>>({ agent: [], queue: [], flow: [], external: [] });

  useEffect(() => {
    if (!opened) return;
    // The directory is what this user may read; what it may not is simply absent.
    const names = async (p: Promise<{ items: { name: string }[] }>) => (await p.catch(() => ({ items: [] }))).items.map((i) => i.name);
    void Promise.all([
      names(call(api.GET("/api/v1/agents", { params: { query: { limit: 500 } } }))),
      names(call(api.GET("/api/v1/queues", { params: { query: { limit: 500 } } }))),
      names(call(api.GET("/api/v1/flows", { params: { query: { limit: 500 } } }))),
    ]).then(([agent, queue, flow]) => setDirectory({ agent, queue, flow, external: [] }));
  }, [opened]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    await onTransfer(type, target);
    onClose();
  }

  return (
    <Modal opened={opened} onClose={onClose} title={t("agent.transfer.title")}>
      <form onSubmit={submit}>
        <Stack>
          <SegmentedControl
            aria-label={t("agent.transfer.type")}
            value={type}
            onChange={(v) => setType(v as TargetType)}
            data={(["queue", "agent", "flow", "external"] as const).map((v) => ({ value: v, label: t(`agent.transfer.${v}`) }))}
          />
          <Autocomplete label={t("agent.transfer.target")} name="transfer-target" required data={directory[type]} value={target} onChange={setTarget} />
          <Button type="submit">{t("agent.transfer.blind")}</Button>
        </Stack>
      </form>
    </Modal>
  );
}

const draftKey = (id: string) => `cloudcc.wrapup.${id}`;

/** The wrap-up form; its draft is kept in localStorage until sent, across reloads and sign-ins. */
function WrapUp({ contact, actions, now }: { contact: LiveContact; actions: ContactActions; now: number }) {
  const { t } = useTranslation();
  const [draft, setDraft] = useState<{ code: string | null; notes: string }>(() => {
    try {
      return JSON.parse(localStorage.getItem(draftKey(contact.id)) ?? "") as { code: string | null; notes: string };
    } catch {
      return { code: null, notes: "" };
    }
  });
  const [error, setError] = useState<string | null>(null);
  const tenantCodes = useDispositions();
  const dispositions = tenantCodes
    ? tenantCodes.map((d) => ({ value: d.code, label: d.label || d.code }))
    : DEFAULT_DISPOSITIONS.map((d) => ({ value: d, label: t(`agent.wrapup.disposition.${d}`) }));
  useEffect(() => localStorage.setItem(draftKey(contact.id), JSON.stringify(draft)), [contact.id, draft]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    try {
      await actions.wrapup(contact.id, draft.code, draft.notes);
      localStorage.removeItem(draftKey(contact.id));
    } catch (err) {
      setError(err instanceof ApiProblem ? err.detail : String(err));
    }
  }

  return (
    <form onSubmit={submit}>
      <Stack>
        <Text role="timer" aria-live="off">
          {t("agent.wrapup.elapsed", { time: formatDuration(now - (contact.wrapupAt ?? now)) })}
        </Text>
        {error && (
          <Alert color="red" role="alert">
            {error}
          </Alert>
        )}
        <Select
          label={t("agent.wrapup.code")}
          name="disposition"
          data={dispositions}
          value={draft.code}
          onChange={(code) => setDraft({ ...draft, code })}
          clearable
        />
        <Textarea label={t("agent.wrapup.notes")} name="notes" autosize minRows={3} maxLength={4000} value={draft.notes} onChange={(e) => setDraft({ ...draft, notes: e.currentTarget.value })} />
        <Button type="submit">{t("agent.wrapup.done")}</Button>
      </Stack>
    </form>
  );
}
