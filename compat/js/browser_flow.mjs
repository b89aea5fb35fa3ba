// Runs browser/app.js in Debian's Chromium (playwright-core, never a downloaded browser):
// bundles it with esbuild, serves the page from its own origin (another port than the
// server's, PAGE_PORT, which the caller's CORS rules name), opens it and prints
// window.result as JSON. PAGE_QUERY is the page's query string; CHROMIUM overrides
// /usr/bin/chromium.
import { createServer } from 'node:http';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

const bundle = await esbuild.build({
  entryPoints: [new URL('./browser/app.js', import.meta.url).pathname],
  bundle: true,
  write: false,
  format: 'iife',
  platform: 'browser',
  define: { global: 'window' },
  logLevel: 'error',
});
const script = bundle.outputFiles[0].text;
const page = '<!doctype html><html><head><meta charset="utf-8"><title>spa</title></head>'
  + '<body><script src="/app.js"></script></body></html>';
const site = createServer((req, res) => {
  if (req.url.startsWith('/app.js')) {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
  } else {
    res.writeHead(200, { 'content-type': 'text/html' }).end(page);
  }
});
await new Promise((resolve) => site.listen(Number(process.env.PAGE_PORT), '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${site.address().port}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const tab = await browser.newPage();
  const consoleLines = [];
  tab.on('console', (m) => consoleLines.push(m.text()));
  await tab.goto(`${origin}/?${process.env.PAGE_QUERY}`);
  await tab.waitForFunction(() => window.result !== undefined, null, { timeout: 60000 });
  const result = await tab.evaluate(() => window.result);
  console.log(JSON.stringify({ origin, ...result, console: consoleLines }));
} finally {
  await browser.close();
  site.close();
}
