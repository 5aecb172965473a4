/*
 * breachwatch in-app notices widget — plain JavaScript, no framework.
 *
 * The product's app shows its customer a banner for each security notice
 * addressed to their organisation, and the full notice on demand; opening it
 * sends the read receipt. The app token must stay on the product's server:
 * point `url` at the product's own backend, which forwards to breachwatch's
 * GET /api/v1/tenants/{tenant}/notices (and POST …/{id}/read) with its token.
 *
 *   <link rel="stylesheet" href="https://breachwatch.example.com/widget/v1/notices.css">
 *   <script src="https://breachwatch.example.com/widget/v1/notices.js"></script>
 *   <div id="security-notices"></div>
 *   <script>
 *     BreachwatchNotices.mount(document.getElementById("security-notices"), {
 *       url: "/account/security-notices",        // the product's proxy of the notices API
 *       headers: {"X-CSRF-Token": csrfToken},    // optional, sent with both requests
 *       labels: {open: "Read the notice", close: "Close"}  // optional
 *     });
 *   </script>
 *
 * Everything from the API is inserted as text; the notice itself is shown in
 * a sandboxed frame (no scripts, no access to the page).
 */
(function (global) {
  "use strict";

  var DEFAULT_LABELS = {
    en: {open: "Read the notice", close: "Close", title: "Security notice"},
    nl: {open: "Lees de melding", close: "Sluiten", title: "Beveiligingsmelding"},
    sv: {open: "Läs meddelandet", close: "Stäng", title: "Säkerhetsmeddelande"},
    fr: {open: "Lire l’avis", close: "Fermer", title: "Avis de sécurité"},
    ar: {open: "اقرأ الإشعار", close: "إغلاق", title: "إشعار أمني"}
  };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  function labelsFor(locale, custom) {
    var base = DEFAULT_LABELS[(locale || "en").split("-")[0]] || DEFAULT_LABELS.en;
    var out = {};
    for (var k in base) out[k] = base[k];
    if (custom) for (var c in custom) if (typeof custom[c] === "string") out[c] = custom[c];
    return out;
  }

  function request(method, url, headers) {
    var h = {"Accept": "application/json"};
    if (headers) for (var k in headers) h[k] = headers[k];
    return fetch(url, {method: method, headers: h, credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.status === 204 ? null : r.json();
    });
  }

  function showNotice(root, n, labels, opts) {
    var old = root.querySelector(".bwn-panel");
    if (old) old.remove();
    var panel = el("section", "bwn-panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", labels.title);
    panel.setAttribute("dir", n.dir === "rtl" ? "rtl" : "ltr");
    panel.setAttribute("lang", n.locale || "en");
    var frame = el("iframe", "bwn-frame");
    // No scripts, no same origin, no forms, no top navigation: the notice
    // is a document to read, nothing more.
    frame.setAttribute("sandbox", "");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.setAttribute("title", n.subject || labels.title);
    frame.srcdoc = String(n.html || "");
    var close = el("button", "bwn-close", labels.close);
    close.type = "button";
    close.addEventListener("click", function () { panel.remove(); });
    panel.appendChild(close);
    panel.appendChild(frame);
    root.appendChild(panel);
    if (!n.read_at) {
      request("POST", opts.url.replace(/\/$/, "") + "/" + encodeURIComponent(n.id) + "/read", opts.headers)
        .then(function () { n.read_at = new Date().toISOString(); })
        .catch(function () { /* retried the next time it is opened */ });
    }
  }

  function render(root, notices, opts) {
    root.textContent = "";
    root.classList.add("bwn-root");
    notices.forEach(function (n) {
      var labels = labelsFor(n.locale, opts.labels);
      var banner = el("div", "bwn-banner" + (n.read_at ? " bwn-read" : ""));
      banner.setAttribute("role", "alert");
      banner.setAttribute("dir", n.dir === "rtl" ? "rtl" : "ltr");
      banner.setAttribute("lang", n.locale || "en");
      banner.appendChild(el("strong", "bwn-subject", n.subject));
      var open = el("button", "bwn-open", labels.open);
      open.type = "button";
      open.addEventListener("click", function () { showNotice(root, n, labels, opts); });
      banner.appendChild(open);
      root.appendChild(banner);
    });
  }

  var BreachwatchNotices = {
    /** mount fetches the notices and shows them in root; it returns a promise of the notices. */
    mount: function (root, opts) {
      if (!root || !opts || typeof opts.url !== "string") throw new Error("BreachwatchNotices.mount(root, {url})");
      return request("GET", opts.url, opts.headers).then(function (body) {
        var notices = (body && Array.isArray(body.notices)) ? body.notices : [];
        render(root, notices, opts);
        return notices;
      });
    }
  };
  global.BreachwatchNotices = BreachwatchNotices;
})(window);
