/* The participant's phone page. Talks only to the participant API, whose addresses and the few
   words this script writes come from the page (#me-config); every other text is the API's own,
   already in the reader's language. The bearer token lives in sessionStorage only: no cookie, so
   nothing another site could make the browser send. Writes text only (never HTML). */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("me-config").textContent);
  var API = cfg.api, S = cfg.strings;
  var TOKEN_KEY = "jieyou.participant.token";
  var PAGE = 20;

  function $(id) { return document.getElementById(id); }
  function show(el, on) { el.hidden = !on; }
  function say(el, text) { el.textContent = text || ""; show(el, !!text); }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_m, name) { return String(values[name]); });
  }
  function token() { try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; } }
  function keepToken(value) {
    try {
      if (value) { sessionStorage.setItem(TOKEN_KEY, value); } else { sessionStorage.removeItem(TOKEN_KEY); }
    } catch (e) { /* private mode without storage: the session lasts as long as the page */ }
  }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  var dateFormat = null;
  try {
    dateFormat = new Intl.DateTimeFormat(cfg.lang === "en" ? "en-GB" : "zh-CN", {
      timeZone: cfg.timezone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"
    });
  } catch (e) { dateFormat = null; }
  function when(iso) {
    var d = new Date(iso);
    return dateFormat ? dateFormat.format(d) : d.toLocaleString();
  }

  /* An error nobody needs to see: the session ended (401, already handled) or changed while the
     request was out, so its answer belongs to no one on this page any more. */
  function quiet() { var err = new Error(""); err.quiet = true; return err; }

  /* One call to the API. Resolves {data, response}; rejects with an Error whose message is the
     API's words (or "could not reach the service"). A 401 on a signed-in call ends the session. */
  function call(method, url, body) {
    var headers = { "Accept": "application/json", "Accept-Language": cfg.accept_language };
    var bearer = token();
    if (bearer) { headers.Authorization = "Bearer " + bearer; }
    var init = { method: method, headers: headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      if (token() !== bearer) { throw quiet(); }
      if (response.ok) {
        return (response.status === 204 ? Promise.resolve(null) : response.json()).then(function (data) {
          return { data: data, response: response };
        });
      }
      return response.json().catch(function () { return null; }).then(function (data) {
        var message = data && data.error && data.error.message ? data.error.message : S.failed;
        if (response.status === 401 && bearer) {
          signedOut(message);
          throw quiet();
        }
        throw new Error(message);
      });
    }, function () {
      throw token() !== bearer ? quiet() : new Error(S.network);
    });
  }
  function failed(target) {
    return function (err) { if (!err.quiet) { say(target, err.message); } };
  }

  /* --- signing in and out --------------------------------------------------------------- */

  function showSignIn(notice) {
    show($("mine"), false);
    show($("signin"), true);
    say($("notice"), notice);
  }

  function signedOut(message) {
    keepToken(null);
    forgetCode();
    clearMine();
    say($("signin-error"), message);
    showSignIn("");
  }

  $("signin-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var phone = $("phone").value.replace(/\s+/g, ""), password = $("password").value;
    var error = $("signin-error");
    if (!/^1[0-9]{10}$/.test(phone)) { say(error, S.phone_format); $("phone").focus(); return; }
    if (!password) { say(error, S.password_missing); $("password").focus(); return; }
    say(error, "");
    var button = event.target.querySelector("button");
    button.disabled = true;
    call("POST", API.login, { phone: phone, password: password }).then(function (result) {
      keepToken(result.data.token);
      $("password").value = "";
      say($("notice"), "");
      openMine();
    }, failed(error)).then(function () { button.disabled = false; });
  });

  $("signout").addEventListener("click", function () {
    // The request carries the token; the page forgets it and clears the screen at once, and says
    // "signed out" once the API has revoked it (or could not be reached: forgotten all the same).
    var ending = call("POST", API.logout);
    keepToken(null);
    forgetCode();
    clearMine();
    say($("signin-error"), "");
    showSignIn("");
    ending.catch(function () { return null; }).then(function () {
      if (!token()) { say($("notice"), S.signed_out); }
    });
  });

  /* --- my points ---------------------------------------------------------------------------- */

  var nextPage = null;

  function clearMine() {
    ["balance", "grade", "grade-points", "grade-next", "usable-list", "unusable-list", "statement-list"]
      .forEach(function (id) { $(id).textContent = ""; });
    $("unusable-count").textContent = "0";
    ["balance-error", "grade-error", "usable-error", "statement-error", "code-error"]
      .forEach(function (id) { say($(id), ""); });
    show($("more"), false);
    nextPage = null;
  }

  function openMine() {
    clearMine();
    show($("signin"), false);
    show($("mine"), true);
    loadBalance();
    loadGrade();
    loadEligibility();
    loadStatement(null);
  }

  function loadBalance() {
    $("balance").textContent = S.loading;
    call("GET", API.balance).then(function (result) {
      $("balance").textContent = String(result.data.balance);
    }, function (err) { $("balance").textContent = ""; failed($("balance-error"))(err); });
  }

  function loadGrade() {
    call("GET", API.grade).then(function (result) {
      var g = result.data, label = function (grade) { return cfg.lang === "en" ? grade.en : grade.zh; };
      $("grade").textContent = g.grade ? label(g.grade) : S.no_grade;
      $("grade-points").textContent = fill(S.points_12m, { points: g.points_12m });
      $("grade-next").textContent = g.next_grade
        ? fill(S.to_next, { points: g.points_to_next, grade: label(g.next_grade) }) : S.top_grade;
    }, failed($("grade-error")));
  }

  function scenarioTerms(s) {
    if (s.kind === "spend") { return fill(S.cost, { points: s.points_cost }); }
    return s.required_grade ? fill(S.privilege, { grade: s.required_grade }) : S.privilege_any;
  }

  function reasonText(r) {
    var text = r.message;
    if (r.need !== null && r.need !== undefined) {
      text += " (" + fill(S.need_have, { need: r.need, have: r.have === null || r.have === undefined ? S.none : r.have }) + ")";
    } else if (r.limit !== null && r.limit !== undefined) {
      text += " (" + fill(S.limit, { limit: r.limit }) + ")";
    }
    return text;
  }

  function loadEligibility() {
    call("GET", API.eligibility).then(function (result) {
      var usable = document.createDocumentFragment(), unusable = document.createDocumentFragment(), blocked = 0;
      result.data.forEach(function (verdict) {
        var s = verdict.scenario, item = el("li");
        item.appendChild(el("div", "row", s.name)).appendChild(el("span", "small", scenarioTerms(s)));
        if (verdict.eligible) {
          if (s.terms) { item.appendChild(el("p", "small", s.terms)); }
          if (verdict.places && verdict.places.length) {
            var names = verdict.places.map(function (p) { return p.name; }).join(S.list_separator);
            item.appendChild(el("p", "small", fill(S.where, { places: names })));
          }
          usable.appendChild(item);
        } else {
          blocked += 1;
          verdict.reasons.forEach(function (r) { item.appendChild(el("p", "why", reasonText(r))); });
          unusable.appendChild(item);
        }
      });
      if (!usable.childNodes.length) { usable.appendChild(el("li", "small", S.nothing_usable)); }
      $("usable-list").appendChild(usable);
      $("unusable-list").appendChild(unusable);
      $("unusable-count").textContent = String(blocked);
    }, failed($("usable-error")));
  }

  function postingItem(line) {
    var item = el("li"), row = el("div", "row");
    row.appendChild(el("span", null, line.kind_label));
    row.appendChild(el("span", line.amount > 0 ? "plus" : "minus", (line.amount > 0 ? "+" : "") + line.amount));
    item.appendChild(row);
    item.appendChild(el("p", null, line.reason));
    if (line.explanation) { item.appendChild(el("p", "small", line.explanation)); }
    if (line.reversed_by_id) { item.appendChild(el("p", "why", S.reversed)); }
    var meta = when(line.effective_at);
    if (line.balance_after !== null && line.balance_after !== undefined) {
      meta += " · " + fill(S.balance_after, { points: line.balance_after });
    }
    item.appendChild(el("p", "small", meta));
    return item;
  }

  function loadStatement(before) {
    var more = $("more");
    more.disabled = true;
    call("GET", API.statement + "?limit=" + PAGE + (before ? "&before=" + encodeURIComponent(before) : "")).then(function (result) {
      var list = $("statement-list"), page = document.createDocumentFragment();
      result.data.items.forEach(function (line) { page.appendChild(postingItem(line)); });
      if (!before && !result.data.items.length) { page.appendChild(el("li", "small", S.no_movements)); }
      list.appendChild(page);
      nextPage = result.data.next;
      show(more, nextPage !== null && nextPage !== undefined);
    }, failed($("statement-error"))).then(function () { more.disabled = false; });
  }

  $("more").addEventListener("click", function () { if (nextPage) { loadStatement(nextPage); } });

  /* --- the one-time code ------------------------------------------------------------------- */

  var code = { timer: null, qrUrl: null, endsAt: 0 };

  function forgetCode() {
    if (code.timer) { clearInterval(code.timer); }
    if (code.qrUrl) { URL.revokeObjectURL(code.qrUrl); }
    code = { timer: null, qrUrl: null, endsAt: 0 };
    $("code-digits").textContent = "";
    $("code-qr").removeAttribute("src");
    show($("code-box"), false);
    say($("code-expired"), "");
    show($("new-code"), false);
    show($("show-code"), true);
  }

  function tick() {
    var left = Math.ceil((code.endsAt - Date.now()) / 1000);
    if (left > 0) {
      var seconds = left % 60;
      $("code-timer").textContent = fill(S.code_left, { time: Math.floor(left / 60) + ":" + (seconds < 10 ? "0" : "") + seconds });
      return;
    }
    forgetCode();  // a dead code is not left on screen for the counter to try
    show($("show-code"), false);
    say($("code-expired"), S.code_expired);
    show($("new-code"), true);
  }

  function newCode() {
    var buttons = [$("show-code"), $("new-code")];
    buttons.forEach(function (b) { b.disabled = true; });
    say($("code-error"), "");
    call("POST", API.codes).then(function (result) {
      var issued = result.data;
      // Count down by the server's clock: a cheap phone's own clock may be minutes off.
      var serverNow = Date.parse(result.response.headers.get("Date") || "");
      // (Date is whole seconds, rounded down: a second less, so a dead code never shows as live.)
      var lifetime = isNaN(serverNow) ? Date.parse(issued.expires_at) - Date.now()
        : Date.parse(issued.expires_at) - serverNow - 1000;
      // The QR image comes in the same answer, as SVG markup: an address of its own would hold
      // the live digits, and every access log on the way would keep them.
      var qrUrl = qrImage(issued.qr_svg);
      forgetCode();
      code.endsAt = Date.now() + lifetime;
      code.qrUrl = qrUrl;
      var digits = issued.code;
      var box = $("code-digits");
      box.textContent = digits.slice(0, 4) + " " + digits.slice(4);
      box.setAttribute("aria-label", fill(S.code_aloud, { digits: digits.split("").join(" ") }));
      if (qrUrl) { $("code-qr").src = qrUrl; }
      show($("code-qr"), !!qrUrl);
      show($("show-code"), false);
      show($("code-box"), true);
      tick();
      code.timer = setInterval(tick, 1000);
    }).catch(failed($("code-error"))).then(function () {
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  /* The SVG as a blob: URL (the page's policy lets images come only from here and blob:). */
  function qrImage(svg) {
    return svg ? URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" })) : null;
  }

  $("show-code").addEventListener("click", newCode);
  $("new-code").addEventListener("click", newCode);

  /* --- start ------------------------------------------------------------------------------- */

  if (token()) { openMine(); } else { showSignIn(""); }
}());
