"""What the tests share, by concern: `auth` (test users, sign-in over HTTP and in Chromium),
`callbacks` (call a Dash callback as the browser would, inputs keyed by component id),
`sql` (read the database behind the app), `grid` (the AG Grid page object, in the browser and
server-side), `processes` (free ports, the demo subprocess), `maintenance` (windows saved as the
/alerts form saves them), `errors` (errors logged straight into the database)."""
