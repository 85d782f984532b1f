import { Text } from "@mantine/core";
import { lazy, Suspense, useEffect } from "react";
import { useTranslation } from "react-i18next";
import { SignIn } from "./shared/auth/SignIn";
import { areasOf, useSession, type Area } from "./shared/auth/session";
import { Shell } from "./shared/components/Shell";
import { StreamProvider } from "./shared/events/context";
import { navigate, usePath } from "./shared/router";

// Each area is its own chunk: an agent's browser never downloads the supervisor's charts.
const AREAS: Record<Area, React.LazyExoticComponent<() => React.JSX.Element>> = {
  agent: lazy(() => import("./agent/AgentArea")),
  supervisor: lazy(() => import("./supervisor/SupervisorArea")),
  admin: lazy(() => import("./admin/AdminArea")),
};

export function App() {
  const { t } = useTranslation();
  const { me } = useSession();
  const path = usePath();
  const areas = areasOf(me);
  const wanted = path.split("/")[1] as Area;
  const area: Area | null = areas.includes(wanted) ? wanted : (areas[0] ?? null);

  useEffect(() => {
    if (me && area && path !== `/${area}`) navigate(`/${area}`, true);
  }, [me, area, path]);

  if (!me) return <SignIn />;
  const Area = area ? AREAS[area] : null;
  return (
    <StreamProvider key={me.id ?? me.name}>
      <Shell me={me} areas={areas} area={area}>
        <Suspense fallback={null}>{Area ? <Area /> : <Text>{t("area.none")}</Text>}</Suspense>
      </Shell>
    </StreamProvider>
  );
}
