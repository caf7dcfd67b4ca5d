/**
 * The web dashboard: src/http/dashboard/{index.html,app.css,app.js} (copied
 * next to the compiled code by scripts/copy-assets.mjs). The page is served
 * as one document with its stylesheet and script inlined, so it needs a
 * single authenticated request (a bearer token may come as ?access_token=,
 * which the script then sends as a header). Read once, on first request.
 */
import { readFile } from 'node:fs/promises';
import { sendText } from './respond.js';
import type { Router } from './router.js';

const DIR = new URL('./dashboard/', import.meta.url);

/** Stops `</script>` / `</style>` inside the inlined text from ending the element. */
function guard(text: string, tag: string): string {
  return text.replaceAll(`</${tag}`, `<\\/${tag}`);
}

export async function loadDashboard(): Promise<string> {
  const [html, css, js] = await Promise.all(
    ['index.html', 'app.css', 'app.js'].map((name) => readFile(new URL(name, DIR), 'utf8')),
  );
  return html!
    .replace('<link rel="stylesheet" href="app.css">', () => `<style>\n${guard(css!, 'style')}</style>`)
    .replace('<script src="app.js"></script>', () => `<script>\n${guard(js!, 'script')}</script>`);
}

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function registerDashboardRoutes(router: Router): void {
  let page: Promise<string> | undefined;
  router.get('/', async ({ res }) => {
    page ??= loadDashboard().catch((err: unknown) => {
      page = undefined; // try again on the next request
      throw err;
    });
    const body = await page;
    res.setHeader('content-security-policy', CSP);
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('referrer-policy', 'no-referrer');
    sendText(res, 200, 'text/html; charset=utf-8', body);
  });
}
