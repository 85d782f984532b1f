// The admin catalogue joins i18next when the admin chunk loads (namespace "admin").
import i18n from "../../shared/i18n";
import { adminEn } from "./en";
import { adminZhCN } from "./zh-CN";

export const NS = "admin";
if (!i18n.hasResourceBundle("en", NS)) {
  i18n.addResourceBundle("en", NS, adminEn);
  i18n.addResourceBundle("zh-CN", NS, adminZhCN);
}
