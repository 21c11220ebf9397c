import { request as playwrightRequest } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { test, expect, setupApp, signIn, ready, makeCsr } from './keyward';

test('the CA rotated from the console: an overlap keeps the old certificate working, at once stops it', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);

  // A certificate, downloaded, with mTLS on.
  const { csr, keyPath } = makeCsr('backend-rotation');
  await page.goto(keyward.url + 'settings/security?do=create');
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Name').fill('backend');
  await page.getByLabel('Certificate signing request (PEM)').fill(csr);
  await page.getByLabel(/Valid for/).fill('60');
  await page.getByRole('button', { name: 'Create certificate' }).click();
  const downloading = page.waitForEvent('download');
  await page.getByTestId('issued').getByRole('link', { name: 'Download certificate' }).click();
  const pem = readFileSync(await (await downloading).path()).toString();
  await page.goto(keyward.url + 'settings/integrations?confirm=secure-mode');
  await ready(page, javaScriptEnabled);
  await page.getByRole('button', { name: 'Turn secure mode on' }).click();
  await expect(page.getByTestId('secure-mode-state')).toHaveText('On');
  await page.goto(keyward.url + 'settings/security?confirm=mtls#mtls');
  await ready(page, javaScriptEnabled);
  await page.getByRole('button', { name: 'Turn mTLS on' }).click();
  await expect(page.getByTestId('mtls-state')).toHaveText('On');
  const withCert = await playwrightRequest.newContext({
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin: keyward.httpsUrl.replace(/\/$/, ''), cert: Buffer.from(pem), key: readFileSync(keyPath) }],
  });
  // Past the gate, the bogus server key is what is refused (401); at the
  // gate, the certificate (403, with the reason).
  const mint = () => withCert.post(keyward.httpsUrl + 'api/v4/authentication/token', {
    headers: { 'X-Server-Key': 'kwsk_not_a_real_key' },
    data: { userId: 'alice' },
  });
  expect((await mint()).status()).toBe(401);

  // One CA to begin with.
  await page.goto(keyward.url + 'settings/security');
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('ca-row')).toHaveCount(1);
  await expect(page.getByTestId('ca-row')).toContainText('current');

  // Rotated with an overlap of 7 days, the new CA for a year.
  await page.getByRole('link', { name: 'Rotate CA…' }).click();
  await ready(page, javaScriptEnabled);
  const form = page.getByTestId('rotate-ca');
  await expect(form.getByTestId('rotate-stops')).toContainText('backend');
  await form.getByLabel("The old CA's certificates keep working for").selectOption({ label: '7 days' });
  await form.getByLabel('The new CA is valid for (days)').fill('365');
  await form.getByRole('button', { name: 'Rotate CA' }).click();
  await expect(page.getByTestId('done')).toContainText('CA 2 issues from now on');
  await expect(page.getByTestId('done')).toContainText('Renew these before then: "backend"');
  await page.goto(keyward.url + 'settings/security');
  await ready(page, javaScriptEnabled);
  const cas = page.getByTestId('ca-row');
  await expect(cas).toHaveCount(2);
  await expect(cas.nth(0)).toContainText('current');
  await expect(cas.nth(0)).toContainText('in 364 days');
  await expect(cas.nth(1)).toContainText('retiring');
  await expect(page.getByTestId('cert-warning')).toContainText('issued by the CA being retired');
  await expect(page.getByTestId('ca-download')).toHaveText('Download the CA bundle');
  const bundle = await (await page.request.get(keyward.url + 'api/v1/ca.pem')).text();
  expect(bundle.match(/BEGIN CERTIFICATE/g)?.length).toBe(2);
  // The old CA's certificate still passes during the overlap.
  expect((await mint()).status()).toBe(401);

  // At once (a leaked key): not without ticking the box that says so.
  await page.getByRole('link', { name: 'Rotate CA…' }).click();
  await ready(page, javaScriptEnabled);
  await form.getByLabel("The old CA's certificates keep working for").selectOption({ index: 0 });
  await form.getByRole('button', { name: 'Rotate CA' }).click();
  await expect(page.getByRole('alert')).toContainText('stops these active certificates');
  await expect(page.getByRole('alert')).toContainText('"backend"');
  await page.goto(keyward.url + 'settings/security?rotate=ca#ca');
  await ready(page, javaScriptEnabled);
  await form.getByLabel("The old CA's certificates keep working for").selectOption({ index: 0 });
  await form.getByLabel(/stop them now/).check();
  await form.getByRole('button', { name: 'Rotate CA' }).click();
  await expect(page.getByTestId('done')).toContainText('These stopped working: "backend"');
  const refused = await mint();
  expect(refused.status()).toBe(403);
  expect((await refused.json()).message).toContain('retired');
  await page.goto(keyward.url + 'settings/security');
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('ca-row')).toHaveCount(3);
  await expect(page.getByTestId('ca-row').filter({ hasText: 'retired' })).toHaveCount(2);
  await expect(page.getByTestId('certificate-row')).toContainText('ca_retired');
  await withCert.dispose();
});
