"""OpenAPI links between the job routes (upload → decompose → status → result), so a reader, and
schemathesis' stateful phase, can follow a job's whole life from the schema."""

from __future__ import annotations

JOB_ID = "$response.body#/job_id"


def _job_links(id_expression: str) -> dict:
    return {
        "GetStatus": {"operationId": "status", "parameters": {"job_id": id_expression},
                      "description": "long-poll the job: `wait` seconds for it to end"},
        "GetResult": {"operationId": "result", "parameters": {"job_id": id_expression},
                      "description": "the zip of layers once the job is completed (409 before)"},
        "GetLayer": {"operationId": "layer", "parameters": {"job_id": id_expression},
                     "description": "one layer PNG once the job is completed (409 before)"},
    }


UPLOAD_LINKS = {
    "Decompose": {"operationId": "decompose", "requestBody": {"file_id": "$response.body#/file_id"},
                  "description": "decompose the uploaded image (its file_id in the request body)"},
}
DECOMPOSE_LINKS = _job_links(JOB_ID)
STATUS_LINKS = {name: link for name, link in _job_links(JOB_ID).items() if name != "GetStatus"}
PREDICT_LINKS = {"GetStatus": {"operationId": "status",
                               "parameters": {"job_id": "$response.body#/predictions/0/job_id"},
                               "description": "the first instance's job, on the job API"}}
