// GET /status for nginx: the gateway's /status shape (docs/contract.md), built by
// asking each storage service's /health at request time. nginx keeps no health
// state between requests, so consecutive_failures is 0 or 1 (this probe only)
// and requests_served is null (nginx does not count per upstream).

async function probe(url) {
    const started = Date.now();
    let ok = false;
    try {
        const reply = await ngx.fetch(url + '/health');
        ok = reply.status === 200;
    } catch (e) {
        // Refused, timed out or unresolvable: all mean "unavailable".
        ok = false;
    }
    return {
        url: url,
        status: ok ? 'available' : 'unavailable',
        last_checked: new Date(started).toISOString(),
        last_check_latency_ms: Date.now() - started,
        consecutive_failures: ok ? 0 : 1,
        requests_served: null,
    };
}

async function status(r) {
    const urls = r.variables.sa_storage_urls.split(',').filter((u) => u.length > 0);
    const services = await Promise.all(urls.map(probe));
    const available = services.filter((s) => s.status === 'available').length;
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify({ available: available, total: services.length, services: services }));
}

export default { status };
