/* The staff console: the verification queue (submitted work in my scope, a page at a time as the
   API pages it, by indicator), one contribution's details with its members, duplicate flag and
   evidence, verify or reject it, and verify the selected rows at once. Joint work naming people
   outside my scope (`in_reach` false) is shown with a note and never offered for a decision. */
(function () {
  "use strict";

  var J = window.JieyouStaff, S = J.S, $ = J.$, el = J.el;
  var PAGE = 20;
  var indicators = {}, next = null, current = null, blobs = [], loadedRules = false;

  function indicatorName(code) {
    var found = indicators[code];
    return found ? code + " " + (J.cfg.lang === "en" ? found.name_en : found.name_zh) : code;
  }

  function loadIndicators() {
    if (loadedRules) { return Promise.resolve(); }
    return J.call("GET", J.address("rules")).then(function (rules) {
      loadedRules = true;
      var select = $("queue-indicator");
      select.textContent = "";
      select.appendChild(el("option", null, S.all_indicators)).value = "";
      rules.indicators.forEach(function (indicator) {
        indicators[indicator.code] = indicator;
        select.appendChild(el("option", null, indicatorName(indicator.code))).value = indicator.code;
      });
    }, function () { /* the filter then offers all indicators only; the queue still loads */ });
  }

  /* --- the list ---------------------------------------------------------------------------- */

  function row(item) {
    var tr = el("tr");
    tr.setAttribute("data-id", String(item.id));
    var pick = tr.appendChild(el("td"));
    if (item.in_reach !== false) {  // out of reach: the API refuses to decide it, so no box to select it
      var box = el("input");
      box.type = "checkbox";
      box.value = String(item.id);
      box.setAttribute("aria-label", J.fill(S.contribution_no, { id: item.id }));
      pick.appendChild(box);
    }
    var open = el("button", "link", "#" + item.id);
    open.type = "button";
    open.setAttribute("data-open", String(item.id));
    tr.appendChild(el("td")).appendChild(open);
    tr.appendChild(el("td", null, indicatorName(item.indicator_code)));
    tr.appendChild(el("td", null, item.work_date));
    tr.appendChild(el("td", null, String(item.members.length)));
    tr.appendChild(el("td", null, J.when(item.submitted_at)));
    var flags = tr.appendChild(el("td", "warn", item.duplicate_of && item.duplicate_of.length
      ? J.fill(S.duplicate, { ids: item.duplicate_of.map(function (id) { return "#" + id; }).join(", ") }) : ""));
    if (item.in_reach === false) { flags.appendChild(el("p", "small reach", S.out_of_reach)); }
    return tr;
  }

  function load(after) {
    var more = $("queue-more");
    more.disabled = true;
    J.say($("queue-error"), "");
    return J.call("GET", J.address("queue", {}, { state: "submitted", indicator_code: $("queue-indicator").value,
                                                  limit: PAGE, after: after })).then(function (page) {
      var rows = $("queue-rows");
      if (!after) { rows.textContent = ""; }
      page.items.forEach(function (item) { rows.appendChild(row(item)); });
      next = page.next;
      J.show(more, next !== null && next !== undefined);
      emptyOrNot();
    }, J.failed($("queue-error"))).then(function () { more.disabled = false; });
  }

  function emptyOrNot() { J.say($("queue-empty"), $("queue-rows").children.length ? "" : S.queue_empty); }

  function dropRows(ids) {
    ids.forEach(function (id) {
      var tr = document.querySelector("#queue-rows tr[data-id='" + id + "']");
      if (tr) { tr.parentNode.removeChild(tr); }
    });
    emptyOrNot();
  }

  $("queue-more").addEventListener("click", function () { if (next) { load(next); } });
  $("queue-refresh").addEventListener("click", function () { load(null); });
  $("queue-indicator").addEventListener("change", function () { load(null); });
  $("queue-rows").addEventListener("click", function (event) {
    var id = event.target.getAttribute && event.target.getAttribute("data-open");
    if (id) { openDetail(Number(id)); }
  });

  /* --- verify the selected rows at once (all or none, as the API does it) -------------------- */

  $("bulk-verify").addEventListener("click", function () {
    var ids = Array.prototype.map.call(document.querySelectorAll("#queue-rows input:checked"),
                                       function (box) { return Number(box.value); });
    var error = $("bulk-error"), result = $("bulk-result");
    J.say(result, "");
    if (!ids.length) { J.showError(error, new Error(S.select_first)); return; }
    J.showError(error, null, $("bulk-box"));
    var body = { contribution_ids: ids }, note = $("bulk-note").value;
    if (note) { body.note = note; }
    J.busy([$("bulk-verify")], J.call("POST", J.address("bulk_verify"), body)).then(function (done) {
      J.say(result, J.fill(S.bulk_done, { count: done.length }));
      $("bulk-note").value = "";
      dropRows(done.map(function (c) { return c.id; }));
      if (current && ids.indexOf(current.id) >= 0) { openDetail(current.id); }
    }, J.failed(error, $("bulk-box")));
  });

  /* --- one contribution -------------------------------------------------------------------- */

  function forgetDetail() {
    blobs.forEach(function (url) { URL.revokeObjectURL(url); });
    blobs = [];
    current = null;
    ["detail-facts", "detail-case", "detail-members", "detail-evidence", "detail-events"].forEach(function (id) {
      $(id).textContent = "";
    });
    J.show($("detail-body"), false);
    J.show($("detail-hint"), true);
    J.say($("detail-error"), "");
    J.say($("detail-result"), "");
    J.showError($("verify-error"), null, $("verify-form"));
    J.showError($("reject-error"), null, $("reject-form"));
    $("verify-note").value = "";
    $("reject-reason").value = "";
  }

  function fact(list, label, value) {
    if (value === null || value === undefined || value === "") { return; }
    list.appendChild(el("dt", null, label));
    list.appendChild(el("dd", null, String(value)));
  }

  function openDetail(id) {
    var keepResult = current && current.id === id ? $("detail-result").textContent : "";
    forgetDetail();
    J.show($("detail-hint"), false);
    return J.call("GET", J.address("contribution", { contribution_id: id })).then(function (c) {
      current = c;
      render(c);
      J.say($("detail-result"), keepResult);
    }, J.failed($("detail-error")));
  }

  function render(c) {
    var L = S.labels;
    $("detail-title").textContent = J.fill(S.contribution_no, { id: c.id }) + " · " + indicatorName(c.indicator_code);
    J.say($("detail-duplicate"), c.duplicate_of && c.duplicate_of.length
      ? J.fill(S.duplicate, { ids: c.duplicate_of.map(function (d) { return "#" + d; }).join(", ") }) : "");
    J.say($("detail-reach"), c.in_reach === false ? S.out_of_reach : "");
    var facts = $("detail-facts");
    fact(facts, L.state, (S.states[c.state] || c.state) + " · " + (c.proposed_points === null
      ? S.not_scored : J.fill(S.points, { points: c.proposed_points })));
    fact(facts, L.work_date, c.work_date);
    fact(facts, L.description, c.description);
    fact(facts, L.conflict_item, c.conflict_item);
    fact(facts, L.warning_colour, c.warning_colour && (S.colours[c.warning_colour] || c.warning_colour));
    fact(facts, L.quantity, c.quantity);
    fact(facts, L.incident, c.incident_key);
    fact(facts, L.submitted_at, J.when(c.submitted_at));
    if (c.decision_reason) { fact(facts, S.fields.reason, c.decision_reason); }
    var steps = $("detail-case");
    Object.keys(S.steps).forEach(function (step) { fact(steps, S.steps[step], (c.case_record || {})[step]); });
    J.show($("detail-case-title"), steps.children.length > 0);  // only mediation work has a case record
    c.members.forEach(function (m) { $("detail-members").appendChild(member(m)); });
    evidence(c);
    c.events.forEach(function (event) {
      var item = el("li");
      item.appendChild(el("span", null, (S.states[event.to_state] || event.to_state) + " · " + event.actor_label));
      item.appendChild(el("span", "small", " " + J.when(event.at)));
      if (event.note) { item.appendChild(el("p", "small", event.note)); }
      $("detail-events").appendChild(item);
    });
    J.show($("decide"), c.state === "submitted" && J.can("verify") && c.in_reach !== false);
    J.show($("detail-body"), true);
  }

  /* A member by the name the API gives this reader (masked for those who should not see it). */
  function member(m) {
    var item = el("li"), name = el("span", null, "#" + m.participant_id);
    item.appendChild(name);
    item.appendChild(el("span", "small", " · " + J.fill(S.share, { share: m.share }) +
      (m.points === null || m.points === undefined ? "" : " · " + J.fill(S.points, { points: m.points }))));
    if (J.can("participant")) {
      J.call("GET", J.address("participant", { participant_id: m.participant_id })).then(function (person) {
        name.textContent = person.name + " (#" + person.id + ", " + person.phone + ")";
      }, function (err) { if (!err.quiet) { item.appendChild(el("span", "error", " " + err.message)); } });
    }
    return item;
  }

  function evidence(c) {
    var box = $("detail-evidence"), shown = c.id;
    if (!c.evidence.length) { box.appendChild(el("p", "small", S.no_evidence)); return; }
    c.evidence.forEach(function (file) {
      var figure = el("figure");
      box.appendChild(figure);
      J.fetchBlob(J.address("evidence", { contribution_id: c.id, evidence_id: file.id })).then(function (url) {
        if (!current || current.id !== shown) { URL.revokeObjectURL(url); return; }
        blobs.push(url);
        if (J.isPicture(file.content_type)) {  // a photo inline; anything else only as a download
          var img = el("img");
          img.src = url;
          img.alt = file.filename;
          figure.appendChild(img);
          figure.appendChild(el("figcaption", "small", file.filename));
        } else {
          var link = el("a", null, J.fill(S.open_file, { name: file.filename }));
          link.href = url;
          link.download = file.filename;
          link.rel = "noopener";
          figure.appendChild(link);
        }
      }, function (err) {
        if (!err.quiet) { figure.appendChild(el("p", "error", J.fill(S.file_failed, { name: file.filename, message: err.message }))); }
      });
    });
  }

  $("verify-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) { return; }
    var id = current.id, body = {}, note = $("verify-note").value, error = $("verify-error");
    if (note) { body.note = note; }
    J.showError(error, null, event.target);
    J.say($("detail-result"), "");
    J.busy(Array.prototype.slice.call(document.querySelectorAll("#decide button")),
      J.call("POST", J.address("verify", { contribution_id: id }), body)).then(function (c) {
      J.say($("detail-result"), J.fill(S.verified, { id: c.id, points: c.proposed_points, until: J.when(c.notice_until) }));
      dropRows([id]);
      return openDetail(id);
    }, J.failed(error, event.target));
  });

  $("reject-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) { return; }
    var id = current.id, reason = $("reject-reason").value, error = $("reject-error");
    J.say($("detail-result"), "");
    if (!reason) { J.showError(error, new Error(S.reason_missing)); $("reject-reason").focus(); return; }
    J.showError(error, null, event.target);
    J.busy(Array.prototype.slice.call(document.querySelectorAll("#decide button")),
      J.call("POST", J.address("reject", { contribution_id: id }), { reason: reason })).then(function (c) {
      J.say($("detail-result"), J.fill(S.rejected, { id: c.id }));
      dropRows([id]);
      return openDetail(id);
    }, J.failed(error, event.target));
  });

  J.section("queue", {
    visible: function () { return J.can("verify"); },
    open: function () { loadIndicators().then(function () { load(null); }); },
    reset: function () {
      forgetDetail();
      $("queue-rows").textContent = "";
      J.say($("queue-error"), "");
      J.say($("queue-empty"), "");
      J.show($("queue-more"), false);
      J.showError($("bulk-error"), null);
      J.say($("bulk-result"), "");
      $("bulk-note").value = "";
      next = null;
    }
  });
}());
