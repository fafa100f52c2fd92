// The merchant's picture upload: show the chosen file's name beside our own button
// (the browser's file input is hidden because it speaks the browser's language).
document.querySelectorAll(".file-pick").forEach((pick) => {
  const input = pick.querySelector("input[type=file]");
  const name = pick.querySelector(".file-name");
  if (!input || !name) return;
  input.addEventListener("change", () => {
    if (input.files && input.files.length) name.textContent = input.files[0].name;
  });
});
