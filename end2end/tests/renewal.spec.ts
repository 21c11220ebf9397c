import { test, expect, setupApp, signIn, ready, makeCsr } from './keyward';

test('a certificate renewed from the console: the new one offered, the old one working for the overlap', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await page.goto(keyward.url + 'settings/security?do=create');
  await ready(page, javaScriptEnabled);
  await page.getByLabel('Name').fill('backend');
  await page.getByLabel('Certificate signing request (PEM)').fill(makeCsr('backend-renewal').csr);
  await page.getByLabel(/Valid for/).fill('60');
  await page.getByRole('button', { name: 'Create certificate' }).click();
  await expect(page.getByTestId('issued')).toContainText('backend');

  await page.goto(keyward.url + 'settings/security');
  await ready(page, javaScriptEnabled);
  await page.getByRole('link', { name: 'Renew…' }).click();
  await ready(page, javaScriptEnabled);
  const form = page.getByTestId('renew-certificate');
  await expect(form.getByLabel(/Valid for/)).toHaveValue('60');
  await form.getByLabel('The current certificate keeps working for').selectOption({ label: '7 days' });
  await page.getByRole('button', { name: 'Renew certificate' }).click();

  // The new one is offered for download; the old one says until when it works.
  await expect(page.getByTestId('issued')).toContainText('backend');
  await page.goto(keyward.url + 'settings/security');
  await ready(page, javaScriptEnabled);
  const rows = page.getByTestId('certificate-row');
  await expect(rows).toHaveCount(2);
  await expect(rows.filter({ hasText: 'Renewed: works until' })).toHaveCount(1);
  // Only the new one can be renewed again.
  await expect(page.getByRole('link', { name: 'Renew…' })).toHaveCount(1);
});
