# An example pi-mcp Rego policy. Add it to a policy file with
#   "rego": ["example.rego"]
# (paths are relative to the policy file). pi-mcp evaluates it after the JSON rules with the
# input {command, commands: [[argv...], ...], cwd, tool, risk}; `decision` and `reasons` can
# only add to or tighten the JSON verdict.
package pimcp

import rego.v1

# The program a command runs, by its base name: `/usr/bin/kubectl` is `kubectl`.
program(cmd) := name if {
	parts := split(cmd[0], "/")
	name := parts[count(parts) - 1]
}

# Production is for humans: the agent may look at prod clusters, never change them.
prod_contexts := {"prod", "production", "prod-eu", "prod-us"}

kubectl_mutations := {"apply", "delete", "edit", "patch", "replace", "scale", "rollout", "drain", "cordon", "exec"}

targets_prod(cmd) if {
	some arg in cmd
	some ctx in prod_contexts
	arg in {sprintf("--context=%s", [ctx]), ctx}
}

deny_reasons contains msg if {
	some cmd in input.commands
	program(cmd) in {"kubectl", "helm"}
	some verb in cmd
	verb in kubectl_mutations
	targets_prod(cmd)
	msg := sprintf("`%s %s` on a production context is for humans only", [program(cmd), verb])
}

# Uploading data with curl or wget only to hosts the team trusts (against exfiltration).
trusted_upload_hosts := {"hooks.slack.com", "api.pagerduty.com"}

upload_flags := {"-d", "--data", "--data-binary", "--data-raw", "-F", "--form", "-T", "--upload-file", "--post-file", "--post-data"}

ask_reasons contains msg if {
	some cmd in input.commands
	program(cmd) in {"curl", "wget"}
	some flag in cmd
	startswith_any(flag, upload_flags)
	not trusted_target(cmd)
	msg := sprintf("`%s` uploads data to a host outside the trusted list", [program(cmd)])
}

startswith_any(s, prefixes) if {
	some p in prefixes
	startswith(s, p)
}

trusted_target(cmd) if {
	some arg in cmd
	some host in trusted_upload_hosts
	startswith(arg, sprintf("https://%s/", [host]))
}

# Runbooks are for humans to change: the agent may read them, never edit them.
deny_reasons contains msg if {
	input.tool == "edit"
	contains(input.command, "/runbooks/")
	msg := "runbooks are edited by humans only"
}

decision := "deny" if count(deny_reasons) > 0

decision := "ask" if {
	count(deny_reasons) == 0
	count(ask_reasons) > 0
}

reasons := deny_reasons | ask_reasons
