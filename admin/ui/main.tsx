/** The admin UI bundle: renders the island of the page the server rendered. */
import { render } from "preact";
import { KeysPage } from "./keys.tsx";
import { BackendsPage } from "./backends.tsx";
import { AuditPage, OverviewPage, RequestsPage, UsagePage } from "./reports.tsx";

const PAGES = {
  overview: OverviewPage,
  keys: KeysPage,
  usage: UsagePage,
  requests: RequestsPage,
  backends: BackendsPage,
  audit: AuditPage,
};

const root = document.getElementById("app");
if (root) {
  const Page = PAGES[(root.dataset.page ?? "overview") as keyof typeof PAGES] ?? OverviewPage;
  root.textContent = "";
  render(<Page />, root);
}
