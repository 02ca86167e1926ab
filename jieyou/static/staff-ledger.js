/* The staff console: the ledger's integrity (the latest hash-chain verification and
   reconciliation, county staff only) and the audit log (auditors), a page at a time. */
(function () {
  "use strict";

  var J = window.JieyouStaff, S = J.S, $ = J.$, el = J.el;
  var PAGE = 50;

  /* A record the service keeps as names and values (a check's figures, a problem, an audit
     record's details), as "name: value" pairs. */
  function pairs(record) {
    return Object.keys(record || {}).map(function (key) {
      var value = record[key];
      return key + ": " + (value !== null && typeof value === "object" ? JSON.stringify(value) : String(value));
    }).join(" · ");
  }

  /* --- integrity --------------------------------------------------------------------------- */

  function checkLine(target, check) {
    target.textContent = "";
    target.className = "";
    if (!check) { target.textContent = S.check_never; return; }
    if (!check.finished_at) { target.textContent = J.fill(S.check_running, { at: J.when(check.started_at) }); return; }
    target.className = check.ok ? "ok" : "error";
    target.appendChild(el("strong", null, check.ok ? S.check_ok : J.fill(S.check_bad, { count: check.problems.length })));
    target.appendChild(el("span", "small", " " + J.fill(S.check_when, { at: J.when(check.finished_at) })));
    if (check.stats) { target.appendChild(el("p", "small", pairs(check.stats))); }
  }

  function loadChecks() {
    var problems = $("check-problems");
    J.say($("checks-error"), "");
    J.busy([$("checks-refresh")], J.call("GET", J.address("checks"))).then(function (status) {
      checkLine($("check-verify"), status.verify);
      checkLine($("check-reconcile"), status.reconcile);
      problems.textContent = "";
      [status.verify, status.reconcile].forEach(function (check) {
        (check && check.problems || []).forEach(function (problem) {
          problems.appendChild(el("li", "error", pairs(problem)));
        });
      });
    }, J.failed($("checks-error")));
  }

  $("checks-refresh").addEventListener("click", loadChecks);

  J.section("ledger", {
    // The API lets these roles in, and then only with a county scope ("scope_required" otherwise).
    visible: function () { return J.can("checks") && J.me().scope_level === "county"; },
    open: loadChecks,
    reset: function () {
      ["check-verify", "check-reconcile", "check-problems"].forEach(function (id) { $(id).textContent = ""; });
      J.say($("checks-error"), "");
    }
  });

  /* --- the audit log ----------------------------------------------------------------------- */

  var auditNext = null;

  function auditRow(record) {
    var tr = el("tr");
    tr.appendChild(el("td", null, J.when(record.at)));
    tr.appendChild(el("td", null, record.actor_label + " (" + record.actor_kind + " #" + record.actor_id + ")"));
    tr.appendChild(el("td", null, record.action));
    tr.appendChild(el("td", null, record.object_type ? record.object_type + " #" + record.object_id : ""));
    tr.appendChild(el("td", "small", pairs(record.details)));
    tr.appendChild(el("td", "small", record.ip || ""));
    return tr;
  }

  function loadAudit(before) {
    var more = $("audit-more"), rows = $("audit-rows");
    more.disabled = true;
    J.say($("audit-error"), "");
    J.call("GET", J.address("audit", {}, { action: $("audit-action").value.trim(), limit: PAGE, before: before }))
      .then(function (page) {
        if (!before) { rows.textContent = ""; }
        page.items.forEach(function (record) { rows.appendChild(auditRow(record)); });
        auditNext = page.next;
        J.show(more, auditNext !== null && auditNext !== undefined);
        J.say($("audit-empty"), rows.children.length ? "" : S.audit_empty);
      }, J.failed($("audit-error"))).then(function () { more.disabled = false; });
  }

  $("audit-more").addEventListener("click", function () { if (auditNext) { loadAudit(auditNext); } });
  $("audit-form").addEventListener("submit", function (event) { event.preventDefault(); loadAudit(null); });

  J.section("audit", {
    visible: function () { return J.can("audit"); },
    open: function () { loadAudit(null); },
    reset: function () {
      $("audit-rows").textContent = "";
      $("audit-action").value = "";
      J.say($("audit-error"), "");
      J.say($("audit-empty"), "");
      J.show($("audit-more"), false);
      auditNext = null;
    }
  });
}());
