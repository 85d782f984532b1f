// Skills: the model has no skill table of its own; a skill is a name an agent holds at a
// level (1-10) and a queue requires at a minimum. This page gathers them: per skill, the
// agents with their levels and the queues with their minimums. Levels are changed on the
// agents and queues pages.
import { Anchor, Stack, Table, Text, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { NS } from "./i18n";
import { list, type Row } from "./rest";

interface Skill {
  name: string;
  agents: { name: string; level: number }[];
  queues: { name: string; level: number }[];
}

export function gatherSkills(agents: Row[], queues: Row[]): Skill[] {
  const skills = new Map<string, Skill>();
  const of = (name: string) => skills.get(name) ?? skills.set(name, { name, agents: [], queues: [] }).get(name)!;
  for (const a of agents)
    for (const [skill, level] of Object.entries((a.skills as Record<string, number> | undefined) ?? {})) of(skill).agents.push({ name: String(a.name), level });
  for (const q of queues)
    for (const [skill, level] of Object.entries((q.required_skills as Record<string, number> | undefined) ?? {})) of(skill).queues.push({ name: String(q.name), level });
  return [...skills.values()].sort((x, y) => x.name.localeCompare(y.name));
}

export default function SkillsPage() {
  const { t } = useTranslation(NS);
  const [skills, setSkills] = useState<Skill[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    Promise.all([list("/api/v1/agents", { limit: 500 }), list("/api/v1/queues", { limit: 500 })]).then(
      ([agents, queues]) => setSkills(gatherSkills(agents.items, queues.items)),
      (e) => setError(String(e instanceof Error ? e.message : e)),
    );
  }, []);
  return (
    <Stack data-testid="resource-skills">
      <Title order={3}>{t("resources.skills")}</Title>
      <Text size="sm">
        {t("skills.intro")} <Anchor href="#agents">{t("resources.agents")}</Anchor> · <Anchor href="#queues">{t("resources.queues")}</Anchor>
      </Text>
      {error && (
        <Text c="red" role="alert">
          {error}
        </Text>
      )}
      <Table striped aria-label={t("resources.skills")}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t("fields.name")}</Table.Th>
            <Table.Th>{t("skills.agents")}</Table.Th>
            <Table.Th>{t("skills.queues")}</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {(skills ?? []).map((s) => (
            <Table.Tr key={s.name} data-skill={s.name}>
              <Table.Td>{s.name}</Table.Td>
              <Table.Td>{s.agents.map((a) => `${a.name} (${a.level})`).join(", ") || "—"}</Table.Td>
              <Table.Td>{s.queues.map((q) => `${q.name} (≥ ${q.level})`).join(", ") || "—"}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {skills?.length === 0 && <Text>{t("list.empty")}</Text>}
    </Stack>
  );
}
