import { createServer, IncomingHttpHeaders } from 'node:http';
import { AddressInfo } from 'node:net';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { test, expect, setupApp, signIn, ready } from './keyward';

type Received = { headers: IncomingHttpHeaders; body: Buffer };

/** A receiver on 127.0.0.1 that answers 200 and keeps what it got. */
async function receiver(): Promise<{ url: string; got: Received[]; close: () => void }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/hooks/keyward`, got, close: () => server.close() };
}

/** The check the README tells receivers to make (Stripe's scheme). */
function signatureHolds(secret: string, header: string, body: Buffer): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2)));
  const expected = createHmac('sha256', secret).update(`${parts.t}.`).update(body).digest('hex');
  return expected.length === parts.v1.length && timingSafeEqual(Buffer.from(expected), Buffer.from(parts.v1));
}

test('an endpoint added for one event, its secret shown once, a signed test event, its log, disabled, deleted', async ({ page, keyward, javaScriptEnabled }) => {
  const rx = await receiver();
  try {
    await setupApp(page, keyward, javaScriptEnabled);
    await signIn(page, javaScriptEnabled);
    await expect(page).toHaveURL(/\/settings\/integrations$/);
    await ready(page, javaScriptEnabled);
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await expect(page).toHaveURL(/\/settings\/webhooks$/);
    await ready(page, javaScriptEnabled);
    await expect(page.getByText('No endpoint yet.')).toBeVisible();

    // A refused URL is said, and what was typed stays.
    await page.getByRole('link', { name: '+ Add endpoint' }).click();
    await ready(page, javaScriptEnabled);
    await page.getByLabel('Endpoint URL').fill('http://169.254.169.254/latest/meta-data');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await expect(page.getByRole('alert')).toContainText('never allowed');
    await expect(page.getByLabel('Endpoint URL')).toHaveValue('http://169.254.169.254/latest/meta-data');

    await page.getByLabel('Endpoint URL').fill(rx.url);
    await page.getByLabel('Description (optional)').fill('Security team');
    await page.getByLabel('Only these:').check();
    await page.getByRole('checkbox', { name: /webhook\.test/ }).check();
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const secretBox = page.getByTestId('webhook-secret');
    await expect(secretBox).toHaveValue(/^whsec_/);
    const secret = await secretBox.inputValue();
    const row = page.getByTestId('webhook-row').filter({ hasText: rx.url });
    await expect(row).toContainText('webhook.test');
    await expect(row).toContainText('Enabled');
    await page.getByRole('link', { name: 'I have stored it' }).click();
    await ready(page, javaScriptEnabled);
    await expect(page.getByTestId('webhook-secret')).toHaveCount(0);
    expect(await page.content()).not.toContain(secret);

    // A test event: signed, and its delivery in the log.
    await page.getByRole('button', { name: 'Send test event' }).click();
    await expect.poll(() => rx.got.length).toBe(1);
    const got = rx.got[0];
    expect(got.headers['keyward-event']).toBe('webhook.test');
    expect(signatureHolds(secret, String(got.headers['keyward-signature']), got.body)).toBe(true);
    expect(JSON.parse(got.body.toString()).id).toBe(got.headers['keyward-delivery']);
    // The log, loaded afresh until the delivery's outcome is recorded
    // (without the #fragment: going to the same URL with one only scrolls).
    const log = await page.getByRole('link', { name: 'Delivery log' }).getAttribute('href');
    expect(log).toMatch(/^\?log=[0-9a-f]+#log$/);
    await expect(async () => {
      await page.goto(keyward.url + 'settings/webhooks' + log!.split('#')[0]);
      await ready(page, javaScriptEnabled);
      await expect(page.getByTestId('delivery-row').first()).toContainText('delivered', { timeout: 500 });
    }).toPass({ timeout: 20_000 });
    await expect(page.getByTestId('delivery-row').first()).toContainText('200');

    // Disabled, then deleted after a confirmation.
    await page.getByRole('button', { name: 'Disable' }).click();
    await expect(page.getByTestId('webhook-row').first()).toContainText('Disabled');
    await expect(page.getByRole('button', { name: 'Send test event' })).toHaveCount(0);
    await page.getByRole('link', { name: 'Delete…' }).click();
    await ready(page, javaScriptEnabled);
    await page.getByRole('button', { name: 'Delete endpoint' }).click();
    await expect(page.getByText('No endpoint yet.')).toBeVisible();
  } finally {
    rx.close();
  }
});
