// Two-factor sign-in through Chromium: an authenticator app set up from
// the admin's own page (the code computed here, as an app does), then a
// sign-in with a code and one with a recovery code. Plain forms: the same
// with JavaScript on and off.
import { Page } from '@playwright/test';
import { test, expect, setupApp, signIn, ready, SUPER, appCode } from './keyward';

async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
}

test('an admin turns on an authenticator app, then signs in with a code and with a recovery code', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);

  await page.getByRole('link', { name: 'Two-factor sign-in' }).click();
  await expect(page).toHaveURL(/\/settings\/two-factor$/);
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('two-factor-off')).toBeVisible();
  await page.getByLabel('Your password').fill(SUPER.password);
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  await expect(page.getByRole('img', { name: 'QR code for your authenticator app' })).toBeVisible();
  const secret = await page.getByTestId('totp-secret').inputValue();
  expect(secret).toMatch(/^[A-Z2-7 ]{32,}$/);

  await page.getByLabel('Code from your app').fill(appCode(secret, Date.now()));
  await page.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();
  const shown = page.getByTestId('recovery-codes');
  await expect(shown).toBeVisible();
  await expect(shown.locator('li')).toHaveCount(10);
  const recovery = (await shown.locator('li').first().innerText()).trim();
  await expect(page.getByTestId('two-factor-on')).toBeVisible();
  await expect(shown.getByRole('link', { name: 'Download' })).toHaveAttribute('download', 'keyward-recovery-codes.txt');

  // Shown once: gone on the next visit.
  await page.goto(keyward.url + 'settings/two-factor');
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('recovery-codes')).toHaveCount(0);
  await expect(page.getByTestId('recovery-codes-left')).toHaveText('You have 10 recovery codes left.');

  // Password, then a code (one step ahead: the one at enrolment is used).
  await signOut(page);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/login\/second-factor$/);
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Code from your app, or a recovery code').fill('000000' === appCode(secret, Date.now()) ? '111111' : '000000');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('That code is not right');
  await page.getByLabel('Code from your app, or a recovery code').fill(appCode(secret, Date.now() + 30000));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/settings\/integrations$/);

  // Password, then a recovery code.
  await signOut(page);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/login\/second-factor$/);
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Code from your app, or a recovery code').fill(recovery);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await page.goto(keyward.url + 'settings/two-factor');
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('recovery-codes-left')).toHaveText('You have 9 recovery codes left.');
});

test('an admin adds a passkey and signs in with it (Chromium virtual authenticator)', async ({ page, keyward, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'passkeys need JavaScript; without it the page says so');
  // Browsers refuse an IP address as a relying party: the loopback
  // address Keyward listens on is served to passkeys as localhost.
  const local = keyward.url.replace('127.0.0.1', 'localhost');
  await setupApp(page, keyward, javaScriptEnabled);
  await page.goto(local + 'login');
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);

  await page.goto(local + 'settings/two-factor');
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Your password').fill(SUPER.password);
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  const secret = await page.getByTestId('totp-secret').inputValue();
  await page.getByLabel('Code from your app').fill(appCode(secret, Date.now()));
  await page.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();
  await expect(page.getByTestId('two-factor-on')).toBeVisible();

  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  const passkeys = page.getByTestId('passkeys');
  await expect(passkeys.getByTestId('passkey-origin')).toContainText(local.replace(/\/$/, ''));
  await passkeys.getByLabel('Name of the new passkey').fill('Work laptop');
  await passkeys.getByLabel('Code from your app').fill(appCode(secret, Date.now() + 30000));
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(page.getByTestId('passkey-list')).toContainText('Work laptop');
  await expect(page.getByTestId('passkey-list')).toContainText('never');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/login\/second-factor$/);
  await ready(page, javaScriptEnabled);
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await expect(page).toHaveURL(/\/settings\/integrations$/);

  await page.goto(local + 'settings/two-factor');
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId('passkey-list')).not.toContainText('never');
});
