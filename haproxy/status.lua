-- GET /status in the gateway's shape (docs/contract.md), from HAProxy's own view of the
-- servers of backend "storage": the state its checks keep, not a fresh probe.
-- Servers are named by their STORAGE_SERVICES authority (host:port, haproxy/render.py), in
-- that order (their numeric id); get_stats() holds the fields of `show stat`.

local BACKEND = "storage"

local function quote(text)
    local escaped = string.gsub(text, '[%c"\\]', function(c)
        return string.format("\\u%04x", string.byte(c))
    end)
    return '"' .. escaped .. '"'
end

local function number_or_null(value)
    local n = tonumber(value)
    if n == nil then
        return "null"
    end
    return tostring(n)
end

-- HAProxy keeps a health counter, not a count of failures in a row: from full health
-- (rise + fall - 1) each failed check takes one off, and the server goes DOWN below rise.
-- After a passing check there is no failure in a row.
-- check_status codes of a failed check ("* " marks one in progress).
local FAILED = {
    SOCKERR = true, L4TOUT = true, L4CON = true, L6TOUT = true, L6RSP = true,
    L7TOUT = true, L7RSP = true, L7STS = true, PROCERR = true, PROCTOUT = true,
}

local function consecutive_failures(stats, up)
    local check = string.gsub(stats.check_status or "", "^%* ", "")
    if not FAILED[check] then
        return 0
    end
    local rise = tonumber(stats.check_rise) or 0
    local fall = tonumber(stats.check_fall) or 0
    local health = tonumber(stats.check_health) or 0
    if up then
        return math.max(rise + fall - 1 - health, 1)
    end
    return fall + math.max(rise - 1 - health, 0)
end

local function service_json(name, server)
    local stats = server:get_stats()
    local state = stats.status or ""
    -- "UP", "UP 1/2" (still serving, failing), "no check"; anything else is out of rotation.
    local up = string.sub(state, 1, 2) == "UP" or state == "no check"
    local host = string.match(name, "^(.*):%d+$") or name
    local address = server:get_addr()
    local address_json = "null"
    if address ~= nil and string.sub(address, 1, 8) ~= "0.0.0.0:" then
        address_json = quote(address)
    end
    local fields = {
        '"url": ' .. quote("http://" .. name),
        '"name": ' .. quote(host),
        '"address": ' .. address_json,
        '"status": ' .. quote(up and "available" or "unavailable"),
        -- HAProxy does not expose when the last check ran.
        '"last_checked": null',
        '"last_check_latency_ms": ' .. number_or_null(stats.check_duration),
        '"consecutive_failures": ' .. tostring(consecutive_failures(stats, up)),
        '"requests_served": ' .. number_or_null(stats.stot),
    }
    return "{" .. table.concat(fields, ", ") .. "}", up
end

core.register_service("status", "http", function(applet)
    local servers = {}
    for name, server in pairs(core.backends[BACKEND].servers) do
        servers[#servers + 1] = { name = name, server = server, id = tonumber(server:get_stats().sid) or 0 }
    end
    table.sort(servers, function(a, b) return a.id < b.id end)
    local entries, available = {}, 0
    for _, s in ipairs(servers) do
        local entry, up = service_json(s.name, s.server)
        entries[#entries + 1] = entry
        if up then
            available = available + 1
        end
    end
    local body = string.format('{"available": %d, "total": %d, "services": [%s]}',
        available, #entries, table.concat(entries, ", "))
    applet:set_status(200)
    applet:add_header("content-type", "application/json")
    applet:add_header("content-length", tostring(#body))
    applet:start_response()
    applet:send(body)
end)
