/* The staff console: corrections awaiting a decision (four eyes: approve or reject with a note;
   one's own request is shown, and the API refuses to let its requester decide it), and objections
   to proposed awards on public notice (uphold or dismiss, with the resolution in words). */
(function () {
  "use strict";

  var J = window.JieyouStaff, S = J.S, $ = J.$, el = J.el;
  var PAGE = 20;

  function fromTemplate(id) { return $(id).content.firstElementChild.cloneNode(true); }
  function part(node, selector) { return node.querySelector(selector); }

  /* --- corrections ------------------------------------------------------------------------- */

  var approvalsAfter = null;

  function signed(amount) { return (amount > 0 ? "+" : "") + amount; }

  /* An account as the API names it for this reader: the participant's name (masked for those
     who read names masked), else the account's code. */
  function accountLabel(party) {
    return party.name ? J.fill(S.account_named, { name: party.name, code: party.account_code })
      : J.fill(S.account_code, { code: party.account_code });
  }

  /* What a reversal undoes: the original's participants (every account, if it moved none) with
     what it moved for each. */
  function originalLine(request) {
    var original = request.original, parties = request.accounts || [];
    var people = parties.filter(function (p) { return p.participant_id !== null && p.participant_id !== undefined; });
    var amounts = (people.length ? people : parties).map(function (p) {
      return accountLabel(p) + " " + J.fill(S.points, { points: signed(p.amount) });
    }).join("、");
    return J.fill(S.original, { kind: original.kind_label, when: J.when(original.effective_at), amounts: amounts,
                                reason: original.reason });
  }

  function approvalItem(request) {
    var item = fromTemplate("approval-item"), me = J.me(), party = (request.accounts || [])[0];
    item.setAttribute("data-id", String(request.id));
    part(item, ".what").textContent = "#" + request.id + " " + (request.kind === "adjustment"
      ? J.fill(S.adjustment, { amount: signed(request.amount), account: accountLabel(party) })
      : J.fill(S.reversal, { posting: request.posting_id }));
    part(item, ".status").textContent = S.request_states[request.status] || request.status;
    part(item, ".reason").textContent = request.reason;
    J.say(part(item, ".original"), request.original ? originalLine(request) : "");
    part(item, ".meta").textContent = J.fill(S.requested, {
      by: request.requested_by_name || "#" + request.requested_by, at: J.when(request.requested_at) });
    J.say(part(item, ".own"), request.requested_by === me.id ? S.own_request : "");
    var form = part(item, "form");
    J.show(form, request.status === "pending" && J.can("decision"));
    [[".approve", true], [".decline", false]].forEach(function (pair) {
      part(form, pair[0]).addEventListener("click", function () { decide(item, request.id, pair[1]); });
    });
    return item;
  }

  function decide(item, id, approve) {
    var form = part(item, "form"), error = part(form, ".error"), body = { approve: approve };
    var note = part(form, ".note").value;
    if (note) { body.note = note; }
    J.showError(error, null, form);
    J.busy(Array.prototype.slice.call(form.querySelectorAll("button")),
      J.call("POST", J.address("decision", { request_id: id }), body)).then(function (decided) {
      J.show(form, false);
      part(item, ".status").textContent = S.request_states[decided.status] || decided.status;
      J.say(part(item, ".ok"), J.fill(approve ? S.approved : S.declined, { id: decided.id }));
    }, J.failed(error, form));
  }

  function loadApprovals(after) {
    var more = $("approvals-more"), list = $("approvals-list");
    more.disabled = true;
    J.say($("approvals-error"), "");
    J.call("GET", J.address("approvals", {}, { status: "pending", limit: PAGE, after: after })).then(function (rows) {
      if (!after) { list.textContent = ""; }
      rows.forEach(function (request) { list.appendChild(approvalItem(request)); });
      // The API answers a list: a full page may have more after it (asked for by its last id).
      approvalsAfter = rows.length === PAGE ? rows[rows.length - 1].id : null;
      J.show(more, approvalsAfter !== null);
      if (!list.children.length) { list.appendChild(el("li", "small", S.approvals_empty)); }
    }, J.failed($("approvals-error"))).then(function () { more.disabled = false; });
  }

  $("approvals-more").addEventListener("click", function () { if (approvalsAfter) { loadApprovals(approvalsAfter); } });
  $("approvals-refresh").addEventListener("click", function () { loadApprovals(null); });

  J.section("approvals", {
    visible: function () { return J.can("approvals"); },
    open: function () { loadApprovals(null); },
    reset: function () {
      $("approvals-list").textContent = "";
      J.say($("approvals-error"), "");
      J.show($("approvals-more"), false);
      approvalsAfter = null;
    }
  });

  /* --- objections -------------------------------------------------------------------------- */

  var noticesNext = null;

  function objectionItem(objection) {
    var item = fromTemplate("objection-item"), form = part(item, "form");
    part(item, ".text").textContent = objection.text;
    part(item, ".meta").textContent = "#" + objection.id + " · " + J.fill(S.lodged, { at: J.when(objection.lodged_at) });
    [[".uphold", true], [".dismiss", false]].forEach(function (pair) {
      part(form, pair[0]).addEventListener("click", function () { resolve(item, objection.id, pair[1]); });
    });
    return item;
  }

  function resolve(item, id, uphold) {
    var form = part(item, "form"), error = part(form, ".error"), text = part(form, ".resolution").value;
    if (!text) { J.showError(error, new Error(S.resolution_missing)); part(form, ".resolution").focus(); return; }
    J.showError(error, null, form);
    J.busy(Array.prototype.slice.call(form.querySelectorAll("button")),
      J.call("POST", J.address("resolve", { objection_id: id }), { uphold: uphold, resolution: text })).then(function () {
      J.show(form, false);
      J.say(part(item, ".ok"), J.fill(uphold ? S.upheld : S.dismissed, { id: id }));
    }, J.failed(error, form));
  }

  /* A notice with open objections: the objections themselves are in the contribution's record. */
  function noticeItem(notice) {
    var item = fromTemplate("notice-item");
    part(item, ".what").textContent = J.fill(S.contribution_no, { id: notice.id }) + " · " +
      notice.indicator_code + " " + notice.indicator_name;
    part(item, ".names").textContent = notice.names.join("、");
    part(item, ".description").textContent = notice.description;
    part(item, ".meta").textContent = J.fill(S.notice_line, {
      points: notice.proposed_points, until: J.when(notice.notice_until), count: notice.open_objections });
    J.call("GET", J.address("contribution", { contribution_id: notice.id })).then(function (c) {
      c.objections.filter(function (o) { return o.status === "open"; }).forEach(function (o) {
        part(item, ".objections").appendChild(objectionItem(o));
      });
    }, J.failed(part(item, ".error")));
    return item;
  }

  function loadNotices(after) {
    var more = $("notices-more"), list = $("notices-list");
    more.disabled = true;
    J.say($("notices-error"), "");
    J.call("GET", J.address("notices", {}, { limit: PAGE, after: after, objected: true })).then(function (page) {
      if (!after) { list.textContent = ""; }
      page.items.filter(function (n) { return n.open_objections > 0; }).forEach(function (notice) {
        list.appendChild(noticeItem(notice));
      });
      noticesNext = page.next;
      J.show(more, noticesNext !== null && noticesNext !== undefined);
      J.say($("notices-empty"), list.children.length ? "" : S.notices_empty);
    }, J.failed($("notices-error"))).then(function () { more.disabled = false; });
  }

  $("notices-more").addEventListener("click", function () { if (noticesNext) { loadNotices(noticesNext); } });
  $("notices-refresh").addEventListener("click", function () { loadNotices(null); });

  J.section("objections", {
    visible: function () { return J.can("resolve"); },
    open: function () { loadNotices(null); },
    reset: function () {
      $("notices-list").textContent = "";
      J.say($("notices-error"), "");
      J.say($("notices-empty"), "");
      J.show($("notices-more"), false);
      noticesNext = null;
    }
  });
}());
