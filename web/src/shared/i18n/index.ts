import i18n from "i18next";
import LanguageDetector from "i18next-browser-languagedetector";
import { initReactI18next } from "react-i18next";
import { en } from "./en";
import { zhCN } from "./zh-CN";

export const LANGUAGES = ["en", "zh-CN"] as const;
export type Language = (typeof LANGUAGES)[number];

// The browser's languages choose (zh, zh-TW, zh-HK all read zh-CN before English); a choice
// made in the app is kept in localStorage and wins from then on.
void i18n
  .use(LanguageDetector)
  .use(initReactI18next)
  .init({
    resources: { en: { translation: en }, "zh-CN": { translation: zhCN } },
    supportedLngs: [...LANGUAGES],
    fallbackLng: { zh: ["zh-CN"], default: ["en"] },
    nonExplicitSupportedLngs: false,
    load: "currentOnly",
    detection: { order: ["localStorage", "navigator"], lookupLocalStorage: "cloudcc.lang", caches: ["localStorage"] },
    interpolation: { escapeValue: false },
    returnNull: false,
  });

export function currentLanguage(): Language {
  const lang = i18n.resolvedLanguage ?? i18n.language;
  return lang?.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

function syncDocument(): void {
  if (typeof document !== "undefined") document.documentElement.lang = currentLanguage();
}
i18n.on("languageChanged", syncDocument);
syncDocument();

/** Durations as the user's locale writes them (1:05:09, 4:07). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const nf = new Intl.NumberFormat(currentLanguage(), { minimumIntegerDigits: 2 });
  return h > 0 ? `${h}:${nf.format(m)}:${nf.format(s % 60)}` : `${m}:${nf.format(s % 60)}`;
}

/** A time of day in the user's locale and time zone. */
export function formatTime(epochSeconds: number): string {
  return new Intl.DateTimeFormat(currentLanguage(), { timeStyle: "medium" }).format(epochSeconds * 1000);
}

export default i18n;
