// The agent's figures of the day (GET /agents/me/figures): read again when one of its events
// says something changed; the current state's time runs on in the page between reads.
import { Group, Paper, Stack, Table, Text, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, call, type Schemas } from "../shared/api/client";
import { useStream } from "../shared/events/context";
import { currentLanguage, formatDuration } from "../shared/i18n";
import { epochSeconds, useNow } from "../shared/time";
import type { Status } from "./model";

const CHANGES = ["agent.state_changed", "contact.wrapup_started", "contact.ended"];

export function Figures({ status }: { status: Status }) {
  const { t } = useTranslation();
  const stream = useStream();
  const now = useNow();
  const [figures, setFigures] = useState<Schemas["AgentFigures"] | null>(null);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    let settle: ReturnType<typeof setTimeout> | null = null;
    const fetchFigures = () =>
      call(api.GET("/api/v1/agents/{agent_id}/figures", { params: { path: { agent_id: "me" } } }))
        .then(setFigures)
        .catch(() => undefined);
    const read = () => {
      // Once more 3 s after the last event: a contact's record is written in batches, after
      // its events, and a busy node may not have it yet at the first read.
      if (settle) clearTimeout(settle);
      settle = setTimeout(fetchFigures, 3000);
      // At most one read per 500 ms however many events come together.
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        void fetchFigures();
      }, 500);
    };
    const offs = CHANGES.map((type) => stream.on(type, read));
    void fetchFigures();
    return () => {
      offs.forEach((off) => off());
      if (timer) clearTimeout(timer);
      if (settle) clearTimeout(settle);
    };
  }, [stream]);

  if (!figures) return null;
  const at = epochSeconds(figures.at, now);
  const times: Record<string, number> = { ...figures.time_in_state };
  if (status.state !== "offline") times[status.state] = (times[status.state] ?? 0) + Math.max(0, now - at);
  const states = Object.entries(times).filter(([, s]) => s >= 1);
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="figures-title" data-testid="figures">
      <Stack gap="xs">
        <Title order={3} size="h4" id="figures-title">
          {t("agent.figures.title")}
        </Title>
        <Group gap="xl">
          <div>
            <Text size="xs" c="dimmed">
              {t("agent.figures.handled")}
            </Text>
            <Text fw={600} data-testid="figures-handled">
              {new Intl.NumberFormat(currentLanguage()).format(figures.handled)}
            </Text>
          </div>
          <div>
            <Text size="xs" c="dimmed">
              {t("agent.figures.aht")}
            </Text>
            <Text fw={600} data-testid="figures-aht">
              {figures.average_handle_seconds == null ? "—" : formatDuration(figures.average_handle_seconds)}
            </Text>
          </div>
        </Group>
        {states.length > 0 && (
          <Table aria-label={t("agent.figures.timeInState")} fz="sm">
            <Table.Tbody>
              {states.map(([state, seconds]) => (
                <Table.Tr key={state}>
                  <Table.Th scope="row" fw={400}>
                    {t(`agent.state.${state}`, { defaultValue: state })}
                  </Table.Th>
                  <Table.Td>{formatDuration(seconds)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Stack>
    </Paper>
  );
}
