// Every console action says what happened, in a live region that has the
// focus afterwards; a refused form keeps what was typed (never a password),
// a successful one is cleared; the "…" menus close as menus do.
import { Page } from '@playwright/test';
import { test, expect, setupApp, signIn, ready, makeCsr } from './keyward';

const BOB = { username: 'bob-admin', password: 'bob has a long password' };

/** The console's live region says `text`; with JavaScript it has the focus
 * (a submit must not drop focus to the page's body). */
async function said(page: Page, jsEnabled: boolean, text: string | RegExp) {
  const region = page.getByRole('status').filter({ has: page.getByTestId('done') });
  await expect(region).toHaveAttribute('aria-live', 'polite');
  await expect(page.getByTestId('done')).toHaveText(text);
  if (jsEnabled) await expect(page.getByTestId('done')).toBeFocused();
}

test('every action says what happened', async ({ page, keyward, javaScriptEnabled }) => {
  test.setTimeout(120_000);
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await ready(page, javaScriptEnabled);

  // Secure mode, on and off.
  await page.getByRole('link', { name: 'Turn secure mode on…' }).click();
  await page.getByRole('button', { name: 'Turn secure mode on' }).click();
  await said(page, javaScriptEnabled, 'Secure mode is on: clients need an auth token from your backend to open a session.');
  await expect(page.getByTestId('secure-mode-state')).toHaveText('On');
  // A new page says nothing stale.
  await page.goto(keyward.url + 'settings/integrations');
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('done')).toHaveText('');
  await page.getByRole('link', { name: 'Turn secure mode off…' }).click();
  await page.getByRole('button', { name: 'Turn secure mode off' }).click();
  await said(page, javaScriptEnabled, 'Secure mode is off: the API key and a userId are enough to open a session.');

  // An admin created, disabled, enabled, their token revoked.
  await page.goto(keyward.url + 'settings/admin-users');
  await ready(page, javaScriptEnabled);
  const create = page.locator('#create-admin');
  await create.getByLabel("New admin's username").fill(BOB.username);
  await create.getByLabel('Initial password (at least 12 characters)').fill(BOB.password);
  await create.getByRole('button', { name: 'Create admin' }).click();
  await said(page, javaScriptEnabled, `Admin ${BOB.username} created. They can sign in with the password you set.`);
  // Cleared for the next one.
  await expect(create.getByLabel("New admin's username")).toHaveValue('');
  await expect(create.getByLabel('Initial password (at least 12 characters)')).toHaveValue('');

  const bob = page.locator(`tr[data-username="${BOB.username}"]`);
  await bob.getByLabel(`Actions for ${BOB.username}`).click();
  await bob.getByRole('link', { name: 'Revoke token' }).click();
  await ready(page, javaScriptEnabled);
  await page.getByRole('button', { name: 'Revoke token' }).click();
  await said(page, javaScriptEnabled, `${BOB.username}'s token is revoked and their console sessions ended. Their next sign-in issues a new token: disable them to keep them out.`);

  await bob.getByLabel(`Actions for ${BOB.username}`).click();
  await bob.getByRole('link', { name: 'Disable…' }).click();
  await ready(page, javaScriptEnabled);
  await page.getByRole('button', { name: `Disable ${BOB.username}` }).click();
  await said(page, javaScriptEnabled, `${BOB.username} is disabled: they cannot sign in, and their token no longer works.`);
  await bob.getByLabel(`Actions for ${BOB.username}`).click();
  await bob.getByRole('button', { name: 'Enable' }).click();
  await said(page, javaScriptEnabled, `${BOB.username} is enabled: they can sign in again.`);

  // A certificate revoked.
  await page.goto(keyward.url + 'settings/security?do=create');
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Name').fill('billing');
  await page.getByLabel('Certificate signing request (PEM)').fill(makeCsr('billing').csr);
  await page.getByRole('button', { name: 'Create certificate' }).click();
  await expect(page.getByTestId('issued')).toContainText('billing');
  const row = page.getByTestId('certificate-row').filter({ hasText: 'billing' });
  await row.getByRole('link', { name: 'Revoke…' }).click();
  await ready(page, javaScriptEnabled);
  await page.getByRole('group', { name: 'Confirm revocation' }).getByRole('button', { name: 'Revoke certificate' }).click();
  await said(page, javaScriptEnabled, 'Certificate “billing” is revoked: the HTTPS listener refuses it from now on.');
});

test('a refused form keeps what was typed, except a password', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);

  await page.goto(keyward.url + 'settings/security?do=create');
  await ready(page, javaScriptEnabled);
  const csr = makeCsr('kept').csr.replace('-----END CERTIFICATE REQUEST-----', 'garbage\n-----END CERTIFICATE REQUEST-----');
  await page.getByLabel('Name').fill('kept name');
  await page.getByLabel('Certificate signing request (PEM)').fill(csr);
  await page.getByLabel(/Valid for/).fill('45');
  await page.getByRole('button', { name: 'Create certificate' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.getByLabel('Name')).toHaveValue('kept name');
  await expect(page.getByLabel('Certificate signing request (PEM)')).toHaveValue(csr);
  await expect(page.getByLabel(/Valid for/)).toHaveValue('45');
  if (javaScriptEnabled) await expect(page.getByRole('alert')).toBeFocused();

  await page.goto(keyward.url + 'settings/admin-users');
  await ready(page, javaScriptEnabled);
  const create = page.locator('#create-admin');
  await create.getByLabel("New admin's username").fill('carol-admin');
  await create.getByLabel('Role').selectOption('super_admin');
  // Too short for the server's rule: the browser's own check is taken away
  // so that the server is the one to refuse.
  await page.evaluate(() => document.querySelectorAll('input[minlength]').forEach((i) => i.removeAttribute('minlength')));
  await create.getByLabel('Initial password (at least 12 characters)').fill('short');
  await create.getByRole('button', { name: 'Create admin' }).click();
  await expect(create.getByRole('alert')).toContainText('12');
  await expect(create.getByLabel("New admin's username")).toHaveValue('carol-admin');
  await expect(create.getByLabel('Role')).toHaveValue('super_admin');
  await expect(create.getByLabel('Initial password (at least 12 characters)')).toHaveValue('');
});

test('the setup and region forms keep what was typed through a refusal, except a password', async ({ page, keyward, javaScriptEnabled }) => {
  await page.goto(keyward.setupUrl);
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Application name').fill('Typed Acme');
  await page.getByLabel('Region').selectOption('custom');
  await page.getByLabel(/Custom label/).fill('moon-1');
  await page.getByLabel(/Custom base URL/).fill('https://moon.example/');
  await page.getByLabel('Username', { exact: true }).fill('typed-admin');
  await page.getByLabel('Password (at least 12 characters)').fill('typed password one');
  await page.getByLabel('Repeat the password').fill('typed password two');
  await page.getByRole('button', { name: 'Create application' }).click();
  await expect(page.getByRole('alert')).toContainText('do not match');
  await expect(page.getByLabel('Application name')).toHaveValue('Typed Acme');
  await expect(page.getByLabel('Region')).toHaveValue('custom');
  await expect(page.getByLabel(/Custom label/)).toHaveValue('moon-1');
  await expect(page.getByLabel(/Custom base URL/)).toHaveValue('https://moon.example/');
  await expect(page.getByLabel('Username', { exact: true })).toHaveValue('typed-admin');
  if (!javaScriptEnabled) await expect(page.getByLabel('Password (at least 12 characters)')).toHaveValue('');

  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await ready(page, javaScriptEnabled);
  const form = page.locator('#region-form');
  await form.getByLabel('Region').selectOption('custom');
  await form.getByLabel(/Custom label/).fill('typed-label');
  await form.getByLabel(/Custom base URL/).fill('ftp://typed.example/');
  await form.getByRole('button', { name: 'Change region' }).click();
  await expect(page.locator('#endpoints').getByRole('alert')).toContainText('https://');
  await expect(form.getByLabel('Region')).toHaveValue('custom');
  await expect(form.getByLabel(/Custom label/)).toHaveValue('typed-label');
  await expect(form.getByLabel(/Custom base URL/)).toHaveValue('ftp://typed.example/');
  await expect(page.getByTestId('endpoint-region')).toHaveText('SG');
});

test('a "…" menu closes on Escape, on a click outside and once an item is chosen', async ({ page, keyward, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'without JavaScript a menu is a plain disclosure; choosing an item loads a new page');
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await page.goto(keyward.url + 'settings/admin-users');
  await ready(page, javaScriptEnabled);
  const menu = page.locator('details.menu').first();
  const summary = menu.locator('summary');

  await summary.click();
  await expect(menu).toHaveAttribute('open', '');
  await page.keyboard.press('Escape');
  await expect(menu).not.toHaveAttribute('open');
  await expect(summary).toBeFocused();

  await summary.click();
  await expect(menu).toHaveAttribute('open', '');
  await page.getByRole('heading', { name: 'Admin Users' }).click();
  await expect(menu).not.toHaveAttribute('open');

  await summary.click();
  await menu.getByRole('link', { name: 'Change password' }).click();
  await expect(page).toHaveURL(/do=password/);
  await expect(menu).not.toHaveAttribute('open');
});
