// English message catalogue. zh-CN.ts must have the same keys (checked by the type system).
export const en = {
  app: { name: "cloudcc", skip: "Skip to content" },
  language: { label: "Language", en: "English", "zh-CN": "简体中文" },
  signin: {
    title: "Sign in",
    intro: "Sign in to your contact center.",
    tenant: "Tenant",
    username: "User name",
    password: "Password",
    submit: "Sign in",
    failed: "Sign-in failed: {{detail}}",
    expired: "Your session ended. Please sign in again.",
  },
  shell: {
    areas: "Areas",
    signout: "Sign out",
    signedInAs: "Signed in as {{name}} ({{role}})",
    stream: { open: "Live", connecting: "Connecting…", closed: "Offline, reconnecting…" },
  },
  area: {
    agent: "Agent workspace",
    supervisor: "Supervisor",
    admin: "Administration",
    none: "Your role has no area in this app yet.",
  },
  admin: {
    intro: "The admin console is not built yet. Until then the API documentation lets you configure everything.",
    apiDocs: "Open the API documentation",
  },
} as const;

type Widen<T> = { [K in keyof T]: T[K] extends string ? string : Widen<T[K]> };
export type Messages = Widen<typeof en>;
