output "endpoint_id" {
  value = google_vertex_ai_endpoint.this.id
}

output "endpoint_name" {
  value = google_vertex_ai_endpoint.this.name
}
