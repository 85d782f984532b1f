// The admin console: a section per resource the role may read (the API refuses the rest
// anyway), the flow designer loaded only when opened. The section is the URL's hash
// (#queues), so a reload or a bookmark lands in the same place.
import { Anchor, Grid, NavLink, Stack, Title } from "@mantine/core";
import { lazy, Suspense, useEffect, useState, useSyncExternalStore } from "react";
import { useTranslation } from "react-i18next";
import { can, useSession } from "../shared/auth/session";
import { ContactDetail } from "./ContactDetail";
import { NS } from "./i18n";
import PromptsPage from "./PromptsPage";
import SkillsPage from "./SkillsPage";
import { RecordingDetail } from "./RecordingDetail";
import { ResourcePage, SettingsPage } from "./ResourcePage";
import { RESOURCES } from "./resources";
import type { Row } from "./rest";

// @xyflow/react is the largest piece of the console: its own chunk, fetched with the page.
const FlowDesigner = lazy(() => import("./flow/FlowDesigner"));

function useHash(): string {
  return useSyncExternalStore(
    (l) => {
      window.addEventListener("hashchange", l);
      return () => window.removeEventListener("hashchange", l);
    },
    () => location.hash.slice(1),
  );
}

export default function AdminArea() {
  const { t } = useTranslation(NS);
  const { me } = useSession();
  const sections = [
    ...RESOURCES.filter((r) => can(me, r.read)).map((r) => r.key),
    ...(can(me, "agents:read") && can(me, "queues:read") ? ["skills"] : []),
    ...(can(me, "flows:read") ? ["flows", "prompts"] : []),
  ];
  const hash = useHash();
  const section = sections.includes(hash) ? hash : sections[0];
  const resource = RESOURCES.find((r) => r.key === section);
  const [contact, setContact] = useState<Row | null>(null);
  const [recording, setRecording] = useState<Row | null>(null);
  useEffect(() => {
    setContact(null);
    setRecording(null);
  }, [section]);
  const opener = resource?.key === "contacts" ? setContact : resource?.key === "recordings" ? setRecording : undefined;

  return (
    <Grid>
      <Grid.Col span={{ base: 12, md: 2 }}>
        <Stack gap={0} component="nav" aria-label={t("nav")}>
          <Title order={2} size="h4" mb="xs">
            {t("title")}
          </Title>
          {sections.map((key) => (
            <NavLink key={key} href={`#${key}`} label={t(`resources.${key}`)} active={key === section} aria-current={key === section ? "page" : undefined} />
          ))}
          <Anchor href="/api/docs" size="sm" mt="sm">
            {t("apiDocs")}
          </Anchor>
        </Stack>
      </Grid.Col>
      <Grid.Col span={{ base: 12, md: 10 }}>
        {resource && (resource.single ? <SettingsPage key={resource.key} resource={resource} /> : <ResourcePage key={resource.key} resource={resource} onOpen={opener} />)}
        {section === "prompts" && <PromptsPage />}
        {section === "skills" && <SkillsPage />}
        {section === "flows" && (
          <Suspense fallback={null}>
            <FlowDesigner />
          </Suspense>
        )}
        {contact && <ContactDetail contact={contact} onClose={() => setContact(null)} />}
        {recording && <RecordingDetail recording={recording} onClose={() => setRecording(null)} />}
      </Grid.Col>
    </Grid>
  );
}
