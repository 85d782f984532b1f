import "@mantine/core/styles.css";
import "./app.css";
import "./shared/i18n";
import { MantineProvider, createTheme } from "@mantine/core";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";

// System fonts only: nothing is loaded from outside (the app works offline).
const theme = createTheme({
  primaryColor: "blue",
  primaryShade: 9, // the darker shades keep white text above WCAG AA contrast
  fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'PingFang SC', 'Microsoft YaHei', sans-serif",
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="light">
      <App />
    </MantineProvider>
  </StrictMode>,
);
