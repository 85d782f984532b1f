import type { Messages } from "./en";

export const zhCN: Messages = {
  app: { name: "cloudcc", skip: "跳到正文" },
  language: { label: "语言", en: "English", "zh-CN": "简体中文" },
  signin: {
    title: "登录",
    intro: "登录到您的联络中心。",
    tenant: "租户",
    username: "用户名",
    password: "密码",
    submit: "登录",
    failed: "登录失败：{{detail}}",
    expired: "会话已结束，请重新登录。",
  },
  shell: {
    areas: "功能区",
    signout: "退出登录",
    signedInAs: "当前用户：{{name}}（{{role}}）",
    stream: { open: "实时", connecting: "正在连接…", closed: "已离线，正在重连…" },
  },
  area: {
    agent: "坐席工作台",
    supervisor: "班长监控",
    admin: "系统管理",
    none: "您的角色在本应用中暂无功能区。",
  },
  admin: {
    intro: "管理控制台尚未完成。在此之前，可通过 API 文档完成全部配置。",
    apiDocs: "打开 API 文档",
  },
};
