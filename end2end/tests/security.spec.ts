import { request as playwrightRequest } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { test, expect, setupApp, signIn, ready, makeCsr } from './keyward';

test('a certificate from a pasted CSR, downloaded, mTLS on through its checks, then revoked', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await ready(page, javaScriptEnabled);

  // The switch explains what is missing and cannot be used yet.
  await page.getByRole('link', { name: 'Security' }).click();
  await expect(page).toHaveURL(/\/settings\/security$/);
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('mtls-state')).toHaveText('Off');
  const prerequisites = page.getByTestId('mtls-prerequisites');
  await expect(prerequisites).toContainText('✗ Secure mode is on');
  await expect(prerequisites).toContainText('✗ At least one active certificate (0 active)');
  await expect(page.getByRole('button', { name: 'Turn mTLS on…' })).toBeDisabled();

  // A bad CSR gets a readable reason, and nothing is created.
  await page.getByRole('link', { name: '+ Create Certificate' }).click();
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Name').fill('broken');
  await page.getByLabel('Certificate signing request (PEM)').fill('not a CSR');
  await page.getByRole('button', { name: 'Create certificate' }).click();
  await expect(page.getByRole('alert')).toContainText('must be PEM');
  await page.goto(keyward.url + 'settings/security');
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('mtls-prerequisites')).toContainText('(0 active)');
  await expect(page.getByText('broken')).toHaveCount(0);

  // A real CSR, pasted.
  const { csr, keyPath } = makeCsr('backend-e2e');
  await page.goto(keyward.url + 'settings/security?do=create');
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Name').fill('backend e2e');
  await page.getByLabel('Certificate signing request (PEM)').fill(csr);
  await page.getByLabel(/Valid for/).fill('30');
  await page.getByRole('button', { name: 'Create certificate' }).click();
  await expect(page.getByTestId('issued')).toContainText('backend e2e');
  const row = page.getByTestId('certificate-row').filter({ hasText: 'backend e2e' });
  await expect(row).toContainText('CN=backend-e2e');
  await expect(row).toContainText('active');
  // A new certificate is not about to expire (30 days: warned of in its last 10).
  await expect(page.getByTestId('cert-warning')).toHaveCount(0);
  await expect(row).toContainText('in 29 days');

  // Download: the certificate with the CA chain.
  const downloading = page.waitForEvent('download');
  await page.getByTestId('issued').getByRole('link', { name: 'Download certificate' }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe('backend-e2e.pem');
  const pem = readFileSync(await download.path()).toString();
  expect(pem.match(/BEGIN CERTIFICATE/g)?.length).toBe(2);

  // Secure mode on (Integrations), then mTLS on through its confirmation.
  await page.goto(keyward.url + 'settings/integrations?confirm=secure-mode');
  await ready(page, javaScriptEnabled);
  await page.getByRole('button', { name: 'Turn secure mode on' }).click();
  await expect(page.getByTestId('secure-mode-state')).toHaveText('On');
  await page.goto(keyward.url + 'settings/security');
  await ready(page, javaScriptEnabled);
  await expect(prerequisites).toContainText('✓ Secure mode is on');
  await expect(prerequisites).toContainText('✓ At least one active certificate (1 active)');
  await page.getByRole('link', { name: 'Turn mTLS on…' }).click();
  await expect(page.getByRole('group', { name: 'Confirm mTLS' })).toContainText('will be refused');
  await page.getByRole('button', { name: 'Turn mTLS on' }).click();
  await expect(page.getByTestId('mtls-state')).toHaveText('On');

  // A TLS client with the downloaded certificate passes the gate (and then
  // fails on the bogus server key); one without a certificate does not.
  const withCert = await playwrightRequest.newContext({
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin: keyward.httpsUrl.replace(/\/$/, ''), cert: Buffer.from(pem), key: readFileSync(keyPath) }],
  });
  const passed = await withCert.post(keyward.httpsUrl + 'api/v4/authentication/token', {
    headers: { 'X-Server-Key': 'kwsk_not_a_real_key' },
    data: { userId: 'alice' },
  });
  expect(passed.status()).toBe(401);
  const without = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  const refused = await without.post(keyward.httpsUrl + 'api/v4/authentication/token', {
    headers: { 'X-Server-Key': 'kwsk_not_a_real_key' },
    data: { userId: 'alice' },
  });
  expect(refused.status()).toBe(403);
  expect((await refused.json()).message).toContain('no client certificate');

  // Revoke, through a confirmation that warns it is the last one.
  await row.getByRole('link', { name: 'Revoke…' }).click();
  await ready(page, javaScriptEnabled);
  const confirm = page.getByRole('group', { name: 'Confirm revocation' });
  await expect(confirm).toContainText('only active certificate');
  await confirm.getByRole('button', { name: 'Revoke certificate' }).click();
  await expect(page.getByTestId('certificate-row').filter({ hasText: 'backend e2e' })).toContainText('revoked');
  await expect(page.getByTestId('cert-warning')).toContainText('no certificate is active');
  const afterRevoke = await withCert.post(keyward.httpsUrl + 'api/v4/authentication/token', {
    headers: { 'X-Server-Key': 'kwsk_not_a_real_key' },
    data: { userId: 'alice' },
  });
  expect(afterRevoke.status()).toBe(403);
  expect((await afterRevoke.json()).message).toContain('revoked');
  await withCert.dispose();
  await without.dispose();
});
