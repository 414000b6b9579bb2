"""pip-audit over the pinned requirements, honest about what it could check.

Fails on a known vulnerability. When pip-audit's vulnerability source cannot be reached (this
workplace's network reaches only package indexes), every package comes back skipped: that is said
plainly instead of passing off "no known vulnerabilities found".
"""

import json
import subprocess
import sys

result = subprocess.run(
    [sys.executable, "-m", "pip_audit", "-r", "requirements.txt", "-f", "json", "--progress-spinner", "off"],
    capture_output=True,
    text=True,
)
try:
    report = json.loads(result.stdout)
except json.JSONDecodeError:
    print(f"pip-audit failed: {result.stderr.strip()[-500:]}")
    sys.exit(1)
dependencies = report.get("dependencies", [])
audited = [dep for dep in dependencies if "skip_reason" not in dep]
vulnerable = [dep for dep in audited if dep.get("vulns")]
for dep in vulnerable:
    ids = ", ".join(vuln["id"] for vuln in dep["vulns"])
    print(f"VULNERABLE {dep['name']} {dep['version']}: {ids}")
if not audited:
    print(f"pip-audit: the vulnerability source was unreachable; none of {len(dependencies)} packages was audited")
    sys.exit(0)
print(f"pip-audit: {len(audited)} of {len(dependencies)} packages audited, {len(vulnerable)} vulnerable")
sys.exit(1 if vulnerable else 0)
