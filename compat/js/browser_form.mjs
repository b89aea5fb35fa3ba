// A plain HTML upload form in Debian's Chromium (playwright-core): the page, on its own
// origin (PAGE_PORT), holds FORM's url and fields as hidden inputs and a file input; the test
// picks a file and submits, as a person would. S3 answers with a 303 to the page's /done,
// whose query (bucket, key, etag) is printed as JSON with the final URL.
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const form = JSON.parse(process.env.FORM);
const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
const inputs = Object.entries(form.fields)
  .map(([k, v]) => `<input type="hidden" name="${escape(k)}" value="${escape(v)}">`)
  .join('');
const page = '<!doctype html><html><head><meta charset="utf-8"><title>upload</title></head><body>'
  + `<form method="post" enctype="multipart/form-data" action="${escape(form.url)}">${inputs}`
  + '<input type="file" name="file" id="file"><button id="send" type="submit">Upload</button>'
  + '</form></body></html>';
const site = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' }).end(
    req.url.startsWith('/done') ? '<!doctype html><title>done</title>uploaded' : page,
  );
});
await new Promise((resolve) => site.listen(Number(process.env.PAGE_PORT), '127.0.0.1', resolve));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const tab = await browser.newPage();
  await tab.goto(`http://127.0.0.1:${site.address().port}/`);
  await tab.setInputFiles('#file', {
    name: process.env.FILE_NAME,
    mimeType: 'text/plain',
    buffer: Buffer.from(process.env.FILE_TEXT),
  });
  await Promise.all([tab.waitForURL(/\/done/, { timeout: 60000 }), tab.click('#send')]);
  const url = new URL(tab.url());
  console.log(JSON.stringify({ url: url.href, ...Object.fromEntries(url.searchParams) }));
} finally {
  await browser.close();
  site.close();
}
