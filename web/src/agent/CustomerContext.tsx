// What the pop-up shows beside the caller: the way in (IVR steps with the choices made), the
// contact's attributes (the flow's variables), and the customer's earlier contacts.
import { Badge, Group, List, Stack, Table, Text, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, call, type Schemas } from "../shared/api/client";
import { currentLanguage } from "../shared/i18n";
import type { LiveContact } from "./model";

const HISTORY = 5;

function scalar(value: unknown): string | null {
  if (value === null || value === undefined || value === "") return null;
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Agent names by id (GET /agents: what this user may read), for the path and the history. */
export function useAgentNames(): Record<string, string> {
  const [names, setNames] = useState<Record<string, string>>({});
  useEffect(() => {
    let live = true;
    call(api.GET("/api/v1/agents", { params: { query: { limit: 500 } } }))
      .then((page) => live && setNames(Object.fromEntries(page.items.map((a) => [a.id, a.name]))))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, []);
  return names;
}

export function CustomerContext({ contact }: { contact: LiveContact }) {
  const { t } = useTranslation();
  const agents = useAgentNames();
  const attributes = Object.entries(contact.attributes).flatMap(([k, v]) => {
    const text = scalar(v);
    return text === null ? [] : [[k, text] as const];
  });
  return (
    <Stack gap="xs">
      {contact.path.length > 0 && (
        <div>
          <Title order={4} size="h6">
            {t("agent.context.path")}
          </Title>
          <List type="ordered" size="sm" data-testid="ivr-path">
            {contact.path.map((step, i) => (
              <List.Item key={i}>
                {t(`agent.context.step.${step.type}`, { defaultValue: step.type })}: {step.type === "agent" ? (agents[step.name] ?? step.name) : step.name}
                {step.choices.map((c, j) => (
                  <Badge key={j} ml="xs" variant="light" tt="none">
                    {t("agent.context.choice", { node: c.node, value: c.value })}
                  </Badge>
                ))}
              </List.Item>
            ))}
          </List>
        </div>
      )}
      {attributes.length > 0 && (
        <div>
          <Title order={4} size="h6">
            {t("agent.context.attributes")}
          </Title>
          <Group gap="xs" data-testid="attributes">
            {attributes.map(([k, v]) => (
              <Text key={k} size="sm">
                <Text span c="dimmed" size="sm">
                  {k}:
                </Text>{" "}
                {v}
              </Text>
            ))}
          </Group>
        </div>
      )}
      {contact.customer && <History customer={contact.customer} current={contact.id} agents={agents} />}
    </Stack>
  );
}

type Row = Schemas["ContactOut"];

/** The customer's last contacts (GET /contacts?customer=): the API lets an agent read them
 * while this customer is on its line. */
function History({ customer, current, agents }: { customer: string; current: string; agents: Record<string, string> }) {
  const { t } = useTranslation();
  const [rows, setRows] = useState<Row[] | null>(null);
  useEffect(() => {
    let live = true;
    call(api.GET("/api/v1/contacts", { params: { query: { customer, limit: HISTORY + 1 } } }))
      .then((page) => live && setRows(page.items.filter((c) => c.id !== current).slice(0, HISTORY)))
      .catch(() => live && setRows([]));
    return () => {
      live = false;
    };
  }, [customer, current]);
  if (rows === null) return null;
  const when = new Intl.DateTimeFormat(currentLanguage(), { dateStyle: "medium", timeStyle: "short" });
  return (
    <div>
      <Title order={4} size="h6" id={`history-${current}`}>
        {t("agent.context.history")}
      </Title>
      {rows.length === 0 ? (
        <Text size="sm">{t("agent.context.noHistory")}</Text>
      ) : (
        <Table aria-labelledby={`history-${current}`} data-testid="history" fz="sm">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t("agent.context.date")}</Table.Th>
              <Table.Th>{t("agent.contact.queue")}</Table.Th>
              <Table.Th>{t("agent.context.agent")}</Table.Th>
              <Table.Th>{t("agent.context.disposition")}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((c) => (
              <Table.Tr key={c.id}>
                <Table.Td>{when.format(new Date(c.created_at))}</Table.Td>
                <Table.Td>{c.queue ?? "—"}</Table.Td>
                <Table.Td>{c.agent_id ? (agents[c.agent_id] ?? "—") : "—"}</Table.Td>
                <Table.Td>{c.wrapup_code ?? t(`agent.context.outcome.${c.disposition ?? "none"}`, { defaultValue: c.disposition ?? "—" })}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </div>
  );
}
