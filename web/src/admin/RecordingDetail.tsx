// One recording from the recordings list: what it is and its two-channel waveform player.
import { Modal, Stack, Table } from "@mantine/core";
import { lazy, Suspense } from "react";
import { useTranslation } from "react-i18next";

import { when } from "./ContactDetail";
import { NS } from "./i18n";
import type { Row } from "./rest";

// wavesurfer.js comes with the player, in its own chunk, when a recording is opened.
const Waveform = lazy(() => import("./Waveform"));

const SHOWN = ["started_at", "contact_id", "agent_id", "duration_seconds", "channels", "state"];

export function RecordingDetail({ recording, onClose }: { recording: Row; onClose: () => void }) {
  const { t } = useTranslation(NS);
  const id = String(recording.id);
  return (
    <Modal opened onClose={onClose} size="xl" title={`${t("resources.recordings")} ${id}`} closeButtonProps={{ "aria-label": t("form.cancel") }}>
      <Stack>
        <Table aria-label={t("resources.recordings")}>
          <Table.Tbody>
            {SHOWN.filter((k) => recording[k] !== undefined && recording[k] !== null).map((k) => (
              <Table.Tr key={k}>
                <Table.Th>{t(`fields.${k}`)}</Table.Th>
                <Table.Td>{k === "started_at" ? when(recording[k]) : String(recording[k])}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        {recording.state === "complete" && (
          <Suspense fallback={null}>
            <Waveform path={`/api/v1/recordings/${encodeURIComponent(id)}/audio`} label={`${t("contact.play")} ${id}`} />
          </Suspense>
        )}
      </Stack>
    </Modal>
  );
}
