import { test, expect, setupApp, signIn, ready, SUPER } from './keyward';
import { execFileSync } from 'node:child_process';
import { Browser } from '@playwright/test';

const BOB = { username: 'bob-admin', password: 'bob has a long password' };

async function createAdmin(dataDir: string, user = BOB) {
  execFileSync(process.env.KEYWARD_BIN ?? `${__dirname}/../../target/debug/keyward`,
    ['admin', 'create', '--username', user.username, '--role', 'admin', '--password-stdin'],
    { input: user.password + '\n', env: { ...process.env, KEYWARD_DATA_DIR: dataDir, DATABASE_URL: undefined as unknown as string, KEYWARD_LOG: 'warn' } });
}

async function newPage(browser: Browser, js: boolean) {
  const context = await browser.newContext({ javaScriptEnabled: js });
  return context.newPage();
}

test('a super admin revokes a signed-in admin, who lands on the login page', async ({ page, keyward, javaScriptEnabled, browser }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await createAdmin(keyward.dataDir);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/integrations$/);

  // Admin B signs in in a second browser.
  const bob = await newPage(browser, javaScriptEnabled);
  await bob.goto(keyward.url + 'login');
  await signIn(bob, javaScriptEnabled, BOB);
  await expect(bob).toHaveURL(/integrations$/);
  await ready(bob, javaScriptEnabled);

  // The super admin revokes B's token by username.
  await page.goto(keyward.url + 'settings/admin-users');
  await ready(page, javaScriptEnabled);
  await expect(page.locator(`tr[data-username="${BOB.username}"] [data-testid=token-status]`)).toHaveText('active');
  await page.getByRole('link', { name: 'Revoke by username…' }).click();
  await page.getByRole('group', { name: "Revoke an admin's token" }).getByLabel('Username').fill('nobody-here');
  await page.getByRole('button', { name: 'Revoke token' }).click();
  await expect(page.getByRole('alert')).toContainText('no admin with that username');
  await page.goto(keyward.url + 'settings/admin-users?do=revoke-other');
  await ready(page, javaScriptEnabled);
  await page.getByRole('group', { name: "Revoke an admin's token" }).getByLabel('Username').fill(BOB.username);
  await page.getByRole('button', { name: 'Revoke token' }).click();
  await expect(page.locator(`tr[data-username="${BOB.username}"] [data-testid=token-status]`)).toHaveText('revoked');

  // B's next click lands on the login page, with a message.
  await bob.getByRole('link', { name: 'Admin Users' }).click();
  await expect(bob).toHaveURL(/\/login/);
  await expect(bob.getByText('Your session has ended')).toBeVisible();
});

test('retrieve needs the password; generate shows the switch-over notice', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await createAdmin(keyward.dataDir);
  await page.goto(keyward.url + 'login');
  await signIn(page, javaScriptEnabled, BOB);
  await expect(page).toHaveURL(/integrations$/);
  await page.getByRole('link', { name: 'Admin Users' }).click();
  await ready(page, javaScriptEnabled);

  const mine = page.locator(`tr[data-username="${BOB.username}"]`);
  await mine.getByLabel('Actions for you').click();
  await mine.getByRole('link', { name: 'Retrieve token' }).click();
  await page.getByLabel('Your password').fill('not my password at all');
  await page.getByRole('button', { name: 'Show token' }).click();
  await expect(page.getByRole('alert')).toContainText('not correct');
  await page.getByLabel('Your password').fill(BOB.password);
  await page.getByRole('button', { name: 'Show token' }).click();
  const first = await page.getByTestId('admin-token').inputValue();
  expect(first).toMatch(/^kwadm_/);
  await page.getByRole('link', { name: 'Done' }).click();
  await expect(page.getByTestId('admin-token')).toHaveCount(0);

  await page.goto(keyward.url + 'settings/admin-users?do=generate');
  await ready(page, javaScriptEnabled);
  await expect(page.getByRole('group', { name: 'Generate token' })).toContainText('24 hours');
  // A new token needs the password again, like showing the current one.
  await page.getByLabel('Your password').fill('not my password at all');
  await page.getByRole('button', { name: 'Generate new token' }).click();
  await expect(page.getByRole('alert')).toContainText('not correct');
  await expect(page.getByTestId('admin-token')).toHaveCount(0);
  await page.getByLabel('Your password').fill(BOB.password);
  await page.getByRole('button', { name: 'Generate new token' }).click();
  const second = await page.getByTestId('admin-token').inputValue();
  expect(second).toMatch(/^kwadm_/);
  expect(second).not.toBe(first);
  await expect(page.getByTestId('switch-over-notice')).toContainText('keeps working until');
  await page.getByRole('link', { name: 'Done' }).click();
  await page.reload();
  await expect(page.getByTestId('token-notice').first()).toContainText('stops working at');
  expect(await page.content()).not.toContain(second);
});

test('a temporary password from a super admin is replaced at the next sign-in', async ({ page, keyward, javaScriptEnabled, browser }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await createAdmin(keyward.dataDir);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/integrations$/);
  await page.goto(keyward.url + 'settings/admin-users');
  await ready(page, javaScriptEnabled);
  const row = page.locator(`tr[data-username="${BOB.username}"]`);
  await row.getByLabel(`Actions for ${BOB.username}`).click();
  await row.getByRole('link', { name: 'Set a temporary password…' }).click();
  await ready(page, javaScriptEnabled);
  const step = page.getByRole('group', { name: 'Set a temporary password' });
  await step.getByLabel('Temporary password (at least 12 characters)').fill('a temporary passphrase');
  await step.getByLabel('Temporary password again').fill('a temporary passphrase');
  await step.getByRole('button', { name: 'Set temporary password' }).click();
  await expect(page.getByTestId('done')).toContainText(`${BOB.username} has a temporary password`);

  const bob = await newPage(browser, javaScriptEnabled);
  await bob.goto(keyward.url + 'login');
  await signIn(bob, javaScriptEnabled, { username: BOB.username, password: 'a temporary passphrase' });
  await expect(bob).toHaveURL(/\/settings\/password$/);
  await ready(bob, javaScriptEnabled);
  // Anything else sends them back here.
  await bob.goto(keyward.url + 'settings/security');
  await expect(bob).toHaveURL(/\/settings\/password$/);
  await ready(bob, javaScriptEnabled);
  await bob.getByLabel('Temporary password').fill('a temporary passphrase');
  await bob.getByLabel('New password', { exact: true }).fill('bob chose this passphrase');
  await bob.getByLabel('New password again').fill('bob chose this passphrase');
  await bob.getByRole('button', { name: 'Choose password' }).click();
  await expect(bob.getByTestId('done')).toHaveText('Your password is changed: it is yours alone now.');
  await bob.getByRole('link', { name: 'Continue to the console' }).click();
  await expect(bob).toHaveURL(/\/settings\/integrations$/);
  await ready(bob, javaScriptEnabled);
  await expect(bob.getByTestId('api-key')).toBeVisible();
});
