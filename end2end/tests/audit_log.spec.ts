import { test, expect, setupApp, signIn, ready, SUPER } from './keyward';

test('the audit log shows setup and sign-in changes, and filters them', async ({ page, keyward, javaScriptEnabled }) => {
  await setupApp(page, keyward, javaScriptEnabled);
  await signIn(page, javaScriptEnabled);
  await page.getByRole('link', { name: 'Audit log' }).click();
  await expect(page).toHaveURL(/settings\/audit-log$/);
  await ready(page, javaScriptEnabled);
  const table = page.getByTestId('audit-table');
  await expect(table.locator('tr[data-action="application.setup"]')).toHaveCount(1);
  await expect(table.locator('tr[data-action="application.setup"]')).toContainText(SUPER.username);

  const filters = page.getByRole('search', { name: 'Filter events' });
  await filters.getByLabel('Action').fill('application');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/action=application/);
  await ready(page, javaScriptEnabled);
  const rows = page.getByTestId('audit-table').locator('tbody tr');
  await expect(rows.first()).toBeVisible();
  for (const action of await rows.evaluateAll(trs => trs.map(tr => tr.getAttribute('data-action')))) {
    expect(action).toMatch(/^application/);
  }

  await filters.getByLabel('Action').fill('');
  await filters.getByLabel('Actor').fill('nobody-at-all');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page.getByTestId('audit-empty')).toHaveText('No events match.');
  await page.getByRole('link', { name: 'Clear' }).click();
  await expect(page.getByTestId('audit-table')).toBeVisible();
});
