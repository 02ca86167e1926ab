/* The staff console: the shared part (configuration, calls to the API, errors in words, signing in
   and out, the sections shown to each role). The sections are in staff-queue.js,
   staff-decisions.js and staff-ledger.js; each registers itself with `JieyouStaff.section`.
   Talks only to the staff API, whose addresses, the roles each lets in and the few words this
   script writes come from the page (#staff-config); every other text is the API's own, already in
   the reader's language. The bearer token lives in sessionStorage only: no cookie, so nothing
   another site could make the browser send. Writes text only (never HTML). */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("staff-config").textContent);
  var API = cfg.api, S = cfg.strings;
  var TOKEN_KEY = "jieyou.staff.token";
  var sections = [], me = null, opened = {};

  function $(id) { return document.getElementById(id); }
  function show(node, on) { node.hidden = !on; }
  function say(node, text) { node.textContent = text || ""; show(node, !!text); }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_m, name) { return String(values[name]); });
  }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function token() { try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; } }
  function keepToken(value) {
    try {
      if (value) { sessionStorage.setItem(TOKEN_KEY, value); } else { sessionStorage.removeItem(TOKEN_KEY); }
    } catch (e) { /* no storage: the session lasts as long as the page */ }
  }

  var dateFormat = null, dayFormat = null;
  try {
    var locale = cfg.lang === "en" ? "en-GB" : "zh-CN";
    dateFormat = new Intl.DateTimeFormat(locale, { timeZone: cfg.timezone, year: "numeric", month: "2-digit",
                                                   day: "2-digit", hour: "2-digit", minute: "2-digit" });
  } catch (e) { dateFormat = null; }
  function when(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return dateFormat ? dateFormat.format(d) : d.toLocaleString();
  }

  /* The address of an endpoint with its path ids filled in, and a query string of the values given. */
  function address(name, ids, query) {
    // Path ids are encoded: they come from the API as numbers, but a path is no place to trust that.
    var url = API[name].replace(/\{(\w+)\}/g, function (_m, key) { return encodeURIComponent(String((ids || {})[key])); });
    var parts = [];
    Object.keys(query || {}).forEach(function (key) {
      var value = query[key];
      if (value !== null && value !== undefined && value !== "") {
        parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
      }
    });
    return parts.length ? url + "?" + parts.join("&") : url;
  }

  /* An error nobody needs to see: the session ended (401, already handled) or changed while the
     request was out, so its answer belongs to no one on this page any more. */
  function quiet() { var err = new Error(""); err.quiet = true; return err; }

  function apiError(response, data) {
    var body = data && data.error ? data.error : {};
    var err = new Error(body.message || S.failed);
    err.status = response.status;
    err.code = body.code || null;
    err.details = body.details || null;
    return err;
  }

  /* One call to the API. Resolves with the answer's JSON (null for a 204); rejects with an Error
     carrying the API's message, code and field details. A 401 on a signed-in call ends the session. */
  function call(method, url, body) {
    var headers = { "Accept": "application/json", "Accept-Language": cfg.accept_language };
    var bearer = token();
    if (bearer) { headers.Authorization = "Bearer " + bearer; }
    var init = { method: method, headers: headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return send(url, init, bearer, function (response) { return response.status === 204 ? null : response.json(); });
  }

  /* `fetch` with the answers every call shares: `ok(response)` for a success; a refusal rejects with
     the API's message, code and field details (a 401 on a signed-in call ends the session); an
     answer that arrives after the session changed is quiet. */
  function send(url, init, bearer, ok) {
    return fetch(url, init).then(function (response) {
      if (token() !== bearer) { throw quiet(); }
      if (response.ok) { return ok(response); }
      return response.json().catch(function () { return null; }).then(function (data) {
        var err = apiError(response, data);
        if (response.status === 401 && bearer) { signedOut(err.message); throw quiet(); }
        throw err;
      });
    }, function () {
      throw token() !== bearer ? quiet() : new Error(S.network);
    });
  }

  /* The only types a fetched file keeps in its blob: URL: the photos the API accepts (checked by
     content there), which an <img> shows and nothing runs. Anything else (a PDF, and whatever the
     API might one day send: HTML, SVG) becomes an opaque download: a blob: URL is of this page's
     origin, so one that a browser opened as a document could act as the signed-in user. */
  var PICTURES = { "image/jpeg": true, "image/png": true, "image/webp": true };
  function isPicture(type) { return PICTURES[String(type || "").split(";")[0].trim().toLowerCase()] === true; }
  function safeBlob(blob) { return isPicture(blob.type) ? blob : new Blob([blob], { type: "application/octet-stream" }); }

  /* A file the API serves to the bearer only (evidence): <img src> and <a href> cannot send the
     header, so fetch it with it and hand back a blob: URL (the caller revokes it). */
  function fetchBlob(url) {
    var bearer = token();
    return send(url, {
      headers: { "Authorization": "Bearer " + bearer, "Accept-Language": cfg.accept_language },
      credentials: "omit", cache: "no-store"
    }, bearer, function (response) {
      return response.blob().then(function (blob) { return URL.createObjectURL(safeBlob(blob)); });
    });
  }

  /* The field details of an error, flattened: {"members": {"0": {"share": ["…"]}}} -> "members.0.share". */
  function detailLines(details, prefix, out) {
    Object.keys(details || {}).forEach(function (field) {
      var value = details[field], name = prefix ? prefix + "." + field : field;
      if (Array.isArray(value)) {
        out.push([name, value.map(function (v) { return typeof v === "string" ? v : JSON.stringify(v); }).join(" ")]);
      } else if (value && typeof value === "object") {
        detailLines(value, name, out);
      } else {
        out.push([name, String(value)]);
      }
    });
    return out;
  }

  /* Show an error in words beside its form: the API's message, then each field it names with the
     API's (localised) messages; the form's own fields named are marked invalid. */
  function showError(target, err, form) {
    target.textContent = "";
    if (form) {
      Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (input) {
        input.removeAttribute("aria-invalid");
      });
    }
    if (!err) { show(target, false); return; }
    if (err.quiet) { return; }
    target.appendChild(el("p", null, err.message));
    var lines = detailLines(err.details, "", []);
    if (lines.length) {
      var list = el("ul", "details");
      lines.forEach(function (line) {
        var label = S.fields[line[0]] || line[0];
        list.appendChild(el("li", null, label + ": " + line[1]));
        var input = form ? form.querySelector("[data-field='" + CSS.escape(line[0]) + "']") : null;
        if (input) { input.setAttribute("aria-invalid", "true"); }
      });
      target.appendChild(list);
    }
    show(target, true);
  }
  function failed(target, form) { return function (err) { showError(target, err, form); }; }

  /* Disable the buttons while a call is out; resolve whatever it does. */
  function busy(buttons, promise) {
    buttons.forEach(function (b) { b.disabled = true; });
    return promise.then(function (value) { buttons.forEach(function (b) { b.disabled = false; }); return value; },
      function (err) { buttons.forEach(function (b) { b.disabled = false; }); throw err; });
  }

  /* May the signed-in person call this endpoint? The roles come from the API's own `require`. */
  function can(name) { return !!me && (cfg.roles[name] || []).indexOf(me.role) >= 0; }

  /* --- sections --------------------------------------------------------------------------- */

  /* `spec`: {visible: () -> bool, open: () -> void (first time shown), reset: () -> void (sign-out)}. */
  function section(name, spec) { sections.push({ name: name, spec: spec }); }

  function tabButton(name) { return document.querySelector("#tabs [data-section='" + name + "']"); }

  function openSection(name) {
    sections.forEach(function (s) {
      var on = s.name === name;
      show($(s.name), on);
      tabButton(s.name).setAttribute("aria-current", on ? "page" : "false");
    });
    if (!opened[name]) {
      opened[name] = true;
      sections.filter(function (s) { return s.name === name; })[0].spec.open();
    }
  }

  $("tabs").addEventListener("click", function (event) {
    var name = event.target.getAttribute && event.target.getAttribute("data-section");
    if (name) { openSection(name); }
  });

  function openConsole() {
    show($("signin"), false);
    say($("notice"), "");
    $("who-label").textContent = me.display_name || me.label;
    $("who-role").textContent = cfg.role_names[me.role] || me.role;
    $("who-scope").textContent = me.scope_name ? me.scope_name
      : me.scope_region_id === null ? "" : fill(S.scope, { id: me.scope_region_id });
    show($("who"), true);
    show($("console"), true);
    var first = null;
    sections.forEach(function (s) {
      var on = s.spec.visible();
      show(tabButton(s.name), on);
      if (on && first === null) { first = s.name; }
    });
    show($("nothing-for-role"), first === null);
    if (first) { openSection(first); }
  }

  function clearConsole() {
    me = null;
    opened = {};
    sections.forEach(function (s) { show($(s.name), false); s.spec.reset(); });
    show($("console"), false);
    show($("who"), false);
  }

  function showSignIn(error) {
    clearConsole();
    say($("signin-error"), error);
    show($("signin"), true);
  }

  function signedOut(message) {
    keepToken(null);
    say($("notice"), "");
    showSignIn(message);
  }

  function whoAmI() {
    return call("GET", API.whoami).then(function (principal) {
      if (!principal || principal.kind !== "staff") { throw new Error(S.not_staff); }
      me = principal;
      openConsole();
    });
  }

  $("signin-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var username = $("username").value.trim(), password = $("password").value;
    var error = $("signin-error");
    if (!username) { say(error, S.username_missing); $("username").focus(); return; }
    if (!password) { say(error, S.password_missing); $("password").focus(); return; }
    say(error, "");
    var button = event.target.querySelector("button");
    busy([button], call("POST", API.login, { username: username, password: password }).then(function (result) {
      keepToken(result.token);
      $("password").value = "";
      return whoAmI();
    })).catch(function (err) {
      if (err.quiet) { return; }
      if (token()) { keepToken(null); }
      say(error, err.message);
    });
  });

  $("signout").addEventListener("click", function () {
    // The request carries the token; the page forgets it and clears the screen at once, and says
    // "signed out" once the API has revoked it (or could not be reached: forgotten all the same).
    var ending = call("POST", API.logout);
    keepToken(null);
    showSignIn("");
    ending.catch(function () { return null; }).then(function () {
      if (!token()) { say($("notice"), S.signed_out); }
    });
  });

  window.JieyouStaff = {
    cfg: cfg, S: S, $: $, el: el, show: show, say: say, fill: fill, when: when, address: address,
    call: call, fetchBlob: fetchBlob, isPicture: isPicture, showError: showError, failed: failed, busy: busy, can: can,
    section: section, me: function () { return me; }
  };

  document.addEventListener("DOMContentLoaded", function () {
    if (token()) {
      whoAmI().catch(function (err) { if (!err.quiet) { keepToken(null); showSignIn(err.message); } });
    } else {
      showSignIn("");
    }
  });
}());
