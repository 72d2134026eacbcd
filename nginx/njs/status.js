// GET /status for nginx: the gateway's /status shape (docs/contract.md), built by
// asking each address in the current upstream block for /health at request time.
// $sa_backends lists them as "url address" pairs, rendered together with the
// `server` lines, so url/name say which STORAGE_SERVICES entry an address came
// from and address is where nginx sends requests. nginx keeps no health state
// between requests, so consecutive_failures is 0 or 1 (this probe only) and
// requests_served is null (nginx does not count per upstream).

async function probe(backend) {
    // No destructuring: njs 0.7 (Debian bookworm's) does not support it.
    const parts = backend.split(' ');
    const url = parts[0];
    const address = parts[1];
    const started = Date.now();
    let ok = false;
    try {
        const reply = await ngx.fetch('http://' + address + '/health');
        ok = reply.status === 200;
    } catch (e) {
        // Refused or timed out: both mean "unavailable".
        ok = false;
    }
    return {
        url: url,
        name: url.replace(/^http:\/\//, '').replace(/:[0-9]+$/, ''),
        address: address,
        status: ok ? 'available' : 'unavailable',
        last_checked: new Date(started).toISOString(),
        last_check_latency_ms: Date.now() - started,
        consecutive_failures: ok ? 0 : 1,
        requests_served: null,
    };
}

async function status(r) {
    const backends = r.variables.sa_backends.split(',').filter((b) => b.length > 0);
    const services = await Promise.all(backends.map(probe));
    const available = services.filter((s) => s.status === 'available').length;
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify({ available: available, total: services.length, services: services }));
}

export default { status };
