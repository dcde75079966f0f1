// mox account and admin pages: small progressive enhancements; every page works without them.

// Forms with data-confirm ask before they post (removing domains, accounts, queued messages).
for (const form of document.querySelectorAll("form[data-confirm]")) {
	form.addEventListener("submit", (ev) => {
		if (!window.confirm(form.dataset.confirm)) {
			ev.preventDefault();
		}
	});
}

// An import in progress: poll its JSON status instead of reloading the whole page.
const progress = document.querySelector("[data-import-status]");
if (progress) {
	const url = progress.dataset.importStatus;
	const text = document.querySelector("[data-import-text]");
	const bar = document.querySelector("progress");
	const poll = async () => {
		try {
			const resp = await fetch(url, { credentials: "same-origin" });
			const st = await resp.json();
			if (text) {
				text.textContent = st.text;
			}
			if (bar && st.total) {
				bar.max = st.total;
				bar.value = st.bytes;
			}
			if (st.done) {
				window.location.reload();
				return;
			}
		} catch (err) {
			console.log("import status", err);
		}
		window.setTimeout(poll, 500);
	};
	window.setTimeout(poll, 500);
}
