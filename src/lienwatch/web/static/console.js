// The console's one script: HTMX swaps the page on 4xx answers too (a refused contact is a
// 409 whose page says the rule and the next allowed time; a bad form a 400 saying why).
// No page is kept in the browser's session storage for the Back button (HTMX's history
// cache): pages carry personal data (a revealed phone in clear), which must not outlive the
// view or the session; Back asks the server again, which masks it or asks to log in.
document.addEventListener("DOMContentLoaded", function () {
  if (window.htmx) {
    htmx.config.historyCacheSize = 0;
    htmx.config.refreshOnHistoryMiss = true;
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "[4]..", swap: true, error: false },
      { code: "...", swap: false, error: true },
    ];
  }
});
