#!/usr/bin/env bash
# A whole deal against `make run`, with curl: the README's walkthrough, runnable.
#
#   make run                      # in one terminal; paste its `export` lines in the other
#   scripts/walkthrough.sh        # needs curl, jq and python3 (or sha256sum)
#
# A studio lists a film, uploads its video to S3 through a presigned URL, declares its rights;
# a developer asks for a license; the studio offers; the developer accepts; the three parties
# sign the contract's exact hash; the developer pays through Stripe (localstripe); the paid
# contract delivers a signed manifest and metered, presigned downloads (one resumed); the
# developer attests a training run. (`marketplace audit verify`, which reads the database
# itself, is left to the reader.)
set -euo pipefail

API=${API:-http://127.0.0.1:8000/api/v1}
: "${OPERATOR_KEY:?paste the export lines that make run printed}"
: "${STUDIO_NORTHLIGHT_KEY:?}" "${DEVELOPER_LUMEN_KEY:?}" "${LOCALSTRIPE:?}"

studio=(-H "Authorization: Bearer $STUDIO_NORTHLIGHT_KEY" -H 'Content-Type: application/json')
developer=(-H "Authorization: Bearer $DEVELOPER_LUMEN_KEY" -H 'Content-Type: application/json')
operator=(-H "Authorization: Bearer $OPERATOR_KEY" -H 'Content-Type: application/json')
call() { curl -sS --fail-with-body "$@"; }
step() { printf '\n== %s\n' "$*" >&2; }

TODAY=$(date -u +%F)
END=$(date -u -d '+1 year' +%F)
RUN=$(date -u +%s)

step "1. The studio lists a film (visibility 'listed': developers see its name)"
TITLE=$(call "$API/titles" "${studio[@]}" -d '{
  "external_id": "walkthrough-'"$RUN"'", "kind": "film", "name": "The Lighthouse Keeper",
  "original_language": "en", "genres": ["drama"], "release_year": 2021,
  "synopsis": "A keeper and a storm.", "visibility": "listed"}' | jq -r .id)
echo "title $TITLE"

step "2. It registers the video, PUTs the bytes to the presigned URL, then completes the asset"
FILE=$(mktemp)
head -c 3000000 /dev/urandom >"$FILE"
SIZE=$(wc -c <"$FILE" | tr -d ' ')
SHA=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$FILE")
ASSET_JSON=$(call "$API/titles/$TITLE/assets" "${studio[@]}" -d '{
  "kind": "video", "byte_size": '"$SIZE"', "sha256": "'"$SHA"'", "filename": "feature.mp4",
  "duration_seconds": 5400, "width": 3840, "height": 2160, "codec": "h264"}')
ASSET=$(jq -r .id <<<"$ASSET_JSON")
UPLOAD_URL=$(jq -r .upload.url <<<"$ASSET_JSON")
UPLOAD_HEADERS=()
while IFS= read -r header; do UPLOAD_HEADERS+=(-H "$header"); done \
  < <(jq -r '.upload.headers // {} | to_entries[] | "\(.key): \(.value)"' <<<"$ASSET_JSON")
curl -sS --fail-with-body -X PUT --upload-file "$FILE" "${UPLOAD_HEADERS[@]}" "$UPLOAD_URL" >/dev/null
call -X POST "$API/assets/$ASSET/complete" "${studio[@]}" | jq -c '{id, status, byte_size}'

step "3. It declares the rights it holds: worldwide, training and evaluation, this year on"
call "$API/titles/$TITLE/rights" "${studio[@]}" -d '{
  "territories": ["WW"], "start": "'"$TODAY"'", "end": "'"$END"'",
  "permitted_uses": ["train", "evaluate"], "exclusive_available": true}' | jq -c '{id, territories}'

step "4. A developer searches the catalog, then checks clearance for its terms"
call "$API/titles?q=lighthouse&genre=drama" "${developer[@]}" | jq -c '[.items[] | {id, name}]'
call "$API/clearance" "${developer[@]}" -d '{"title_ids": ["'"$TITLE"'"], "uses": ["train"],
  "territories": ["US", "GB"], "start": "'"$TODAY"'", "end": "'"$END"'"}' | jq -c .

step "5. It asks for a license (anonymously: the studio sees no developer name until signing)"
REQUEST=$(call "$API/license-requests" "${developer[@]}" -d '{
  "title_ids": ["'"$TITLE"'"], "uses": ["train"], "territories": ["US", "GB"],
  "start": "'"$TODAY"'", "end": "'"$END"'", "budget_cents": 2000000, "currency": "usd",
  "message": "Fine-tuning a video model on maritime drama.", "anonymous": true}' | jq -r .id)
echo "request $REQUEST"

step "6. The studio offers: per-hour pricing on the title's content hours, a download quota"
OFFER=$(call "$API/license-requests/$REQUEST/offers" "${studio[@]}" -d '{
  "title_ids": ["'"$TITLE"'"], "uses": ["train"], "territories": ["US", "GB"],
  "start": "'"$TODAY"'", "end": "'"$END"'",
  "pricing": {"model": "per_hour", "amount_cents": 900000, "currency": "usd"},
  "quota": {"bytes": 10000000, "downloads": 3}}' | jq -r .id)
echo "offer $OFFER"

step "7. The developer counters lower; an operator brokers a middle price; the developer accepts"
COUNTER=$(call "$API/offers/$OFFER/counter" "${developer[@]}" -d '{
  "pricing": {"model": "per_hour", "amount_cents": 600000, "currency": "usd"}}' | jq -r .id)
BROKERED=$(call "$API/offers/$COUNTER/counter" "${operator[@]}" -d '{
  "pricing": {"model": "per_hour", "amount_cents": 750000, "currency": "usd"}}' | jq -r .id)
CONTRACT=$(call -X POST "$API/offers/$BROKERED/accept" "${developer[@]}" | jq -r .contract_id)
echo "contract $CONTRACT"
call "$API/license-requests/$REQUEST/messages" "${studio[@]}" -d '{"body": "4K masters included."}' \
  | jq -c '{body}'

step "8. Each party signs the exact document hash: studio, developer, then the operator"
HASH=$(call "$API/contracts/$CONTRACT" "${developer[@]}" | jq -r .document_sha256)
call "$API/contracts/$CONTRACT/document" "${developer[@]}" | head -c 600; echo " …"
for who in studio developer operator; do
  declare -n headers=$who
  call "$API/contracts/$CONTRACT/sign" "${headers[@]}" -d '{"document_sha256": "'"$HASH"'"}' \
    | jq -c '{status, signatures: [.signatures[].organization_id]}'
done
call "$API/contracts/$CONTRACT/policy" "${developer[@]}" | jq -c '{"@type", permission: [.permission[].action]}'

step "9. The developer pays: a PaymentIntent, confirmed by card at Stripe (here localstripe)"
PAYMENT=$(call -X POST "$API/contracts/$CONTRACT/payments" "${developer[@]}")
jq -c '{id, amount_cents, currency, status}' <<<"$PAYMENT"
INTENT=$(jq -r .client_secret <<<"$PAYMENT" | sed 's/_secret_.*//')
CARD=$(curl -sS -u sk_test_walkthrough: "$LOCALSTRIPE/v1/payment_methods" -d type=card \
  -d 'card[number]=4242424242424242' -d 'card[exp_month]=12' -d "card[exp_year]=$(($(date +%Y) + 2))" \
  -d 'card[cvc]=123' | jq -r .id)
curl -sS -u sk_test_walkthrough: "$LOCALSTRIPE/v1/payment_intents/$INTENT" -d "payment_method=$CARD" >/dev/null
curl -sS -u sk_test_walkthrough: -X POST "$LOCALSTRIPE/v1/payment_intents/$INTENT/confirm" | jq -c '{id, status}'
for _ in $(seq 1 30); do  # localstripe sends the webhook about a second later
  STATUS=$(call "$API/contracts/$CONTRACT" "${developer[@]}" | jq -r .status)
  [ "$STATUS" = active ] && break
  sleep 0.5
done
echo "contract status: $STATUS"

step "10. Delivery: a signed manifest, then a metered presigned download"
call "$API/contracts/$CONTRACT/manifest" "${developer[@]}" | jq -c '{manifest_sha256, assets: [.assets[].asset_id]}'
URL=$(call "$API/contracts/$CONTRACT/downloads" "${developer[@]}" -d '{"asset_id": "'"$ASSET"'"}' | jq -r .url)
# The connection breaks a third of the way in (played here with --range)...
curl -sS --fail --range "0-$((SIZE / 3 - 1))" "$URL" -o "$FILE.download"
HAVE=$(wc -c <"$FILE.download" | tr -d " ")
# ...so the developer asks for the rest only: those bytes were counted by the first grant,
# and a range of an asset counts no byte twice (docs/api-notes.md, batch grants).
REST=$(call "$API/contracts/$CONTRACT/downloads" "${developer[@]}" \
  -d '{"asset_id": "'"$ASSET"'", "range": {"first_byte": '"$HAVE"'}}')
jq -c '{byte_size, range, headers}' <<<"$REST"
curl -sS --fail -H "Range: $(jq -r .headers.Range <<<"$REST")" "$(jq -r .url <<<"$REST")" >>"$FILE.download"
cmp "$FILE" "$FILE.download" && echo "downloaded $SIZE bytes (resumed after $HAVE), identical to the upload"
# Two more whole copies: each counts a download and the file's bytes.
call "$API/contracts/$CONTRACT/downloads" "${developer[@]}" -d '{"asset_id": "'"$ASSET"'"}' >/dev/null
call "$API/contracts/$CONTRACT/downloads" "${developer[@]}" -d '{"asset_id": "'"$ASSET"'"}' >/dev/null
call "$API/contracts/$CONTRACT/usage" "${developer[@]}" | jq -c .
echo "a fourth download would pass the quota (3 downloads, 10 MB):"
curl -sS "$API/contracts/$CONTRACT/downloads" "${developer[@]}" -d '{"asset_id": "'"$ASSET"'"}' | jq -c '{status, code, detail}'

step "11. After delivery: a training run attested, overdue deletions, price guidance"
call "$API/contracts/$CONTRACT/attestations" "${developer[@]}" -d '{"kind": "training_run",
  "model_name": "wave-2", "statement": "Fine-tuned on the licensed titles only."}' | jq -c '{id, kind}'
call "$API/contracts?attestation_overdue=true" "${operator[@]}" | jq -c '{overdue: [.items[].id]}'
call "$API/pricing/benchmarks?genre=drama&permitted_use=train" "${developer[@]}" | jq -c .

step "12. The studio's payout ledger and the audit trail of the deal"
call "$API/payouts" "${studio[@]}" | jq -c '.items[0] | {amount_cents, studio_amount_cents, fee_cents}'
call "$API/audit-events?object_id=$CONTRACT" "${operator[@]}" | jq -r '.items[] | "\(.seq) \(.at) \(.action)"'
rm -f "$FILE" "$FILE.download"
