import { Alert, Badge, Button, Group, Paper, Popover, Select, SimpleGrid, Stack, Text, Textarea, Title } from "@mantine/core";
import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { ApiProblem } from "../shared/api/client";
import { formatDuration } from "../shared/i18n";
import { useNow } from "../shared/time";
import { DEFAULT_DISPOSITIONS, useDispositions } from "./codes";
import { CustomerContext, useAgentNames } from "./CustomerContext";
import type { LiveContact } from "./model";
import { Transfer, type TargetType } from "./Transfer";

export type Op = "hold" | "unhold" | "mute" | "unmute" | "hangup" | "complete-transfer" | "cancel-consult" | "conference" | "leave-conference";

export interface ContactActions {
  op: (id: string, op: Op) => Promise<boolean>;
  dtmf: (id: string, digits: string) => Promise<boolean>;
  transfer: (id: string, targetType: TargetType, target: string) => Promise<boolean>;
  consult: (id: string, targetType: Exclude<TargetType, "flow">, target: string) => Promise<boolean>;
  wrapup: (id: string, code: string | null, notes: string) => Promise<void>;
  record: (id: string, action: "pause" | "resume") => Promise<boolean>;
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
          {contact.phase === "talking" && contact.recording && (
            <Badge color={contact.recording === "paused" ? "gray" : "red"} variant={contact.recording === "paused" ? "outline" : "filled"} data-testid="recording" data-state={contact.recording}>
              {contact.recording === "paused" ? t("agent.contact.recordingPaused") : t("agent.contact.recording")}
            </Badge>
          )}
        </Group>
        <Group gap="xl">
          <Field label={t("agent.contact.customer")} value={contact.customer ?? unknown} />
          <Field label={t("agent.contact.dialed")} value={contact.dialed ?? unknown} />
          <Field label={t("agent.contact.queue")} value={contact.queue ?? "—"} />
        </Group>
        {contact.phase !== "wrapup" && <CustomerContext contact={contact} />}
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
        {contact.recording && (
          // Pausing leaves the span out of the file (e.g. while a card number is read out).
          <Button variant="default" onClick={() => void actions.record(contact.id, contact.recording === "paused" ? "resume" : "pause")} aria-pressed={contact.recording === "paused"}>
            {contact.recording === "paused" ? t("agent.contact.resumeRecording") : t("agent.contact.pauseRecording")}
          </Button>
        )}
        {!contact.consult && (
          <Button variant="default" onClick={() => setTransferOpen(true)}>
            {t("agent.contact.transfer")}
          </Button>
        )}
        <Button color="red" onClick={() => void actions.op(contact.id, "hangup")}>
          {t("agent.contact.hangup")}
        </Button>
      </Group>
      {contact.consult && <Consultation contact={contact} actions={actions} />}
      <Transfer
        opened={transferOpen}
        onClose={() => setTransferOpen(false)}
        onTransfer={(type, target) => actions.transfer(contact.id, type, target)}
        onConsult={(type, target) => actions.consult(contact.id, type, target)}
      />
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

/** A consultation under way: the consulted party, then complete, conference or cancel. */
function Consultation({ contact, actions }: { contact: LiveContact; actions: ContactActions }) {
  const { t } = useTranslation();
  const consult = contact.consult!;
  const agents = useAgentNames();
  const party = (consult.agentId && agents[consult.agentId]) || consult.peer;
  const status = contact.conference ? t("agent.consult.conference") : consult.answered ? t("agent.consult.talking") : t("agent.consult.ringing");
  return (
    <Paper withBorder p="sm" component="section" aria-label={t("agent.consult.title")} data-testid="consultation">
      <Stack gap="xs">
        <Text>
          <Text span fw={600}>
            {t("agent.consult.title")}
          </Text>
          {" · "}
          {party} · {status}
        </Text>
        {consult.answered && (
          <Group gap="xs">
            {contact.conference ? (
              <Button variant="default" onClick={() => void actions.op(contact.id, "leave-conference")}>
                {t("agent.consult.leave")}
              </Button>
            ) : (
              <>
                <Button onClick={() => void actions.op(contact.id, "complete-transfer")}>{t("agent.consult.complete")}</Button>
                <Button variant="default" onClick={() => void actions.op(contact.id, "conference")}>
                  {t("agent.consult.conferenceButton")}
                </Button>
                <Button variant="light" color="red" onClick={() => void actions.op(contact.id, "cancel-consult")}>
                  {t("agent.consult.cancel")}
                </Button>
              </>
            )}
          </Group>
        )}
      </Stack>
    </Paper>
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
        {contact.part && <Text data-testid="wrapup-part">{t("agent.wrapup.part")}</Text>}
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
