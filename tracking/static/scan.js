/* The scanning page: one keyboard-wedge scan per Enter, each answered at once. */
(function () {
  var input = document.getElementById("scan-input");
  var code = document.getElementById("code");
  var flash = document.getElementById("scan-flash");
  var log = document.getElementById("scan-log");
  var count = 0;
  var labels = {accepted: input.dataset.accepted, duplicate: input.dataset.duplicate,
                rejected: input.dataset.rejected};
  function toggle() {
    document.getElementById("receiver-field").hidden = code.value !== "EMI";
    document.getElementById("failed-fields").hidden = code.value !== "EMH";
  }
  code.addEventListener("change", toggle); toggle();
  function show(res) {
    // A scan saved out of sequence is kept but flagged: shown as a warning.
    var cls = res.outcome === "accepted" ? (res.out_of_sequence ? "dup" : "ok")
      : res.outcome === "duplicate" ? "dup" : "bad";
    flash.hidden = false; flash.className = "scan-flash " + cls;
    flash.textContent = labels[res.outcome] + " · " + res.tracking_number + (res.reason ? " · " + res.reason : "");
    var li = document.createElement("li"); li.className = cls;
    var num = document.createElement("bdi"); num.className = "num"; num.textContent = res.tracking_number;
    var what = document.createElement("span"); what.textContent = labels[res.outcome] + " · " + res.code;
    var why = document.createElement("span"); why.textContent = res.reason || res.status_text || "";
    li.append(num, what, why); log.prepend(li);
    if (res.outcome === "accepted") { count++; document.getElementById("scan-count").textContent = count; }
  }
  input.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    var number = input.value.trim(); input.value = "";
    if (!number) return;
    // The office is the clerk's own (the server knows it); details go only with the
    // event they belong to, so a failed-delivery reason is never sent with later scans.
    var body = {number: number, code: code.value};
    if (code.value === "EMI") {
      body.receiver_name = document.getElementById("receiver_name").value;
      body.receiver_id_number = document.getElementById("receiver_id_number").value;
    }
    if (code.value === "EMH") {
      body.reason_code = document.getElementById("reason_code").value;
      body.action_code = document.getElementById("action_code").value;
    }
    fetch(input.dataset.url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": input.dataset.csrf},
      body: JSON.stringify(body)})
      .then(function (r) { return r.json(); })
      .then(show)
      .catch(function () { show({outcome: "rejected", tracking_number: number, code: body.code, reason: input.dataset.offline}); });
  });
})();
