import { test, expect, setupApp, signIn, ready } from './keyward';

test('secure mode, a server key shown once, and the API working with it', async ({ page, keyward, javaScriptEnabled, request }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await ready(page, javaScriptEnabled);
  const apiKey = await page.getByTestId('api-key').inputValue();

  // One session without an auth token, so the confirmation has someone to warn about.
  const before = await request.post(keyward.url + 'api/v3/sessions', {
    headers: { 'X-API-Key': apiKey },
    data: { userId: 'early-bird', deviceId: 'phone' },
  });
  expect(before.status()).toBe(200);

  // Secure mode on, through its confirmation.
  await expect(page.getByTestId('secure-mode-state')).toHaveText('Off');
  await page.getByRole('link', { name: 'Turn secure mode on…' }).click();
  await expect(page.getByRole('group', { name: 'Confirm secure mode' })).toContainText('will be refused');
  await page.getByRole('button', { name: 'Turn secure mode on' }).click();
  await expect(page.getByTestId('secure-mode-state')).toHaveText('On');

  // A server key: warning first, then the key, once.
  await page.getByRole('link', { name: 'Generate new server key' }).click();
  await expect(page.getByRole('group', { name: 'Confirm new server key' })).toContainText('shown once');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  const shown = page.getByTestId('new-server-key');
  await expect(shown).toBeVisible();
  const serverKey = await shown.inputValue();
  expect(serverKey).toMatch(/^kwsk_[A-Za-z0-9_-]{32}$/);
  await expect(page.getByTestId('server-key-table')).toContainText(serverKey.slice(0, 11) + '…');

  await page.getByRole('link', { name: 'I have stored it' }).click();
  await expect(page.getByTestId('new-server-key')).toHaveCount(0);
  await page.reload();
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('new-server-key')).toHaveCount(0);
  expect(await page.content()).not.toContain(serverKey);
  await expect(page.getByTestId('server-key-table')).toContainText('Active');

  // The key works against the API: mint an auth token, open a session.
  const minted = await request.post(keyward.url + 'api/v4/authentication/token', {
    headers: { 'X-Server-Key': serverKey },
    data: { userId: 'alice' },
  });
  expect(minted.status()).toBe(200);
  const authToken = await minted.text();
  const refused = await request.post(keyward.url + 'api/v3/sessions', {
    headers: { 'X-API-Key': apiKey },
    data: { userId: 'alice', deviceId: 'phone' },
  });
  expect(refused.status()).toBe(401);
  const session = await request.post(keyward.url + 'api/v3/sessions', {
    headers: { 'X-API-Key': apiKey },
    data: { userId: 'alice', deviceId: 'phone', authToken },
  });
  expect(session.status()).toBe(200);
  expect((await session.json()).users[0].userId).toBe('alice');
});

test('a super admin moves the application to a custom region', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('endpoint-region')).toHaveText('SG');

  const form = page.locator('#region-form');
  await form.getByLabel('Region').selectOption('custom');
  await form.getByLabel('Custom label').fill('acme-eu');
  // Not a web address: refused with a readable message, nothing changed.
  await form.getByLabel('Custom base URL').fill('ftp://chat.acme.example/');
  await form.getByRole('button', { name: 'Change region' }).click();
  await expect(page.getByRole('alert')).toContainText('https://');
  await expect(page.getByTestId('endpoint-region')).toHaveText('SG');

  await form.getByLabel('Region').selectOption('custom');
  await form.getByLabel('Custom label').fill('acme-eu');
  await form.getByLabel('Custom base URL').fill('https://chat.acme.example');
  await form.getByRole('button', { name: 'Change region' }).click();
  await expect(page.getByTestId('endpoint-region')).toHaveText('ACME-EU');
  await expect(page.locator('tr.highlight')).toContainText('https://chat.acme.example/');
});
