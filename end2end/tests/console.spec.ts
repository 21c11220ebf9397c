import { test, expect, setupApp, signIn, ready, SUPER } from './keyward';

test('setup, sign in, see the API key, sign out', async ({ page, keyward, javaScriptEnabled }) => {
  const violations: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) violations.push(m.text());
  });

  await setupApp(page, keyward, javaScriptEnabled);
  await expect(page.getByText('Setup is complete')).toBeVisible();

  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('app-name')).toHaveText('Acme Chat');
  await expect(page.getByTestId('region')).toHaveText('SG');
  await expect(page.getByTestId('signed-in-as')).toContainText(SUPER.username);
  const apiKey = await page.getByTestId('api-key').inputValue();
  expect(apiKey).toMatch(/^kwapi_[A-Za-z0-9_-]{32}$/);
  await expect(page.locator('tr.highlight')).toContainText(keyward.url);

  if (javaScriptEnabled) {
    // The copy button exists only where it can work.
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await page.getByRole('button', { name: 'Copy the API key' }).click();
    await expect(page.getByRole('button', { name: 'Copy the API key' })).toHaveText('Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(apiKey);
  } else {
    await expect(page.getByRole('button', { name: 'Copy the API key' })).toHaveCount(0);
  }

  await page.getByRole('link', { name: 'Admin Users' }).click();
  await expect(page.getByTestId('admin-table')).toContainText('Super Admin');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto(keyward.url + 'settings/integrations');
  await expect(page).toHaveURL(/\/login/);
  expect(violations).toEqual([]);
});

test('a wrong password is refused with a readable message', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled, { username: SUPER.username, password: 'not the password' });
  await expect(page.getByRole('alert')).toHaveText('Incorrect username or password.');
  await expect(page).toHaveURL(/\/login/);
  // A fresh page first, so the second refusal is the second attempt's own.
  await page.goto(keyward.url + 'login');
  await expect(page.getByRole('alert')).toHaveCount(0);
  await signIn(page, javaScriptEnabled, { username: 'nobody', password: 'not the password' });
  await expect(page.getByRole('alert')).toHaveText('Incorrect username or password.');
});

test('the setup page refuses a wrong token and is gone after setup', async ({ page, keyward, javaScriptEnabled }) => {
  await page.goto(keyward.url + 'setup?token=kwsetup_not-the-right-token');
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Application name').fill('Acme');
  await page.getByLabel('Username', { exact: true }).fill(SUPER.username);
  await page.getByLabel('Password (at least 12 characters)').fill(SUPER.password);
  await page.getByLabel('Repeat the password').fill(SUPER.password);
  await page.getByRole('button', { name: 'Create application' }).click();
  await expect(page.getByRole('alert')).toContainText('setup link is not valid');

  await setupApp(page, keyward, javaScriptEnabled);
  await page.goto(keyward.setupUrl);
  await expect(page).toHaveURL(/\/login/);
});

test('the console hydrates from the bundle built into the binary', async ({ page, keyward, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'there is no bundle to load without JavaScript');
  const loaded: { url: string; cache: string | null }[] = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/pkg/')) loaded.push({ url: r.url(), cache: r.headers()['cache-control'] ?? null });
  });
  await page.goto(keyward.url + 'login');
  await ready(page, javaScriptEnabled);
  // Served with no site folder anywhere (the test starts the bare binary),
  // named by content hash and cached for good.
  const names = loaded.map((l) => new URL(l.url).pathname).sort();
  expect(names).toEqual([
    expect.stringMatching(/^\/pkg\/keyward-[0-9a-f]{16}\.css$/),
    expect.stringMatching(/^\/pkg\/keyward-[0-9a-f]{16}\.js$/),
    expect.stringMatching(/^\/pkg\/keyward-[0-9a-f]{16}_bg\.wasm$/),
  ]);
  for (const l of loaded) expect(l.cache).toBe('public, max-age=31536000, immutable');
});

test('the API reference renders the OpenAPI document in the console', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await page.getByRole('link', { name: 'API reference' }).click();
  await expect(page).toHaveURL(/\/settings\/api$/);
  await ready(page, javaScriptEnabled);
  await expect(page.getByRole('heading', { name: 'API reference' })).toBeVisible();
  // The tab says where you are, also after in-app navigation.
  await expect(page).toHaveTitle('API reference · Acme Chat · Keyward');
  const token = page.locator('#post--admin-v1-token');
  await expect(token).toContainText('Generate a new admin token');
  await expect(token).toContainText('Authorization: Bearer token');
  expect(await page.getByTestId('operation').count()).toBeGreaterThan(20);
  await expect(page.getByTestId('openapi-link')).toHaveAttribute('href', '/api/openapi.json');
});
