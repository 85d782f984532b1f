import { Stack, Title } from "@mantine/core";
import { useTranslation } from "react-i18next";

export default function SupervisorArea() {
  const { t } = useTranslation();
  return (
    <Stack>
      <Title order={2}>{t("area.supervisor")}</Title>
    </Stack>
  );
}
